#!/bin/sh
test_description='mutual TLS: pinned keys and a CA, refusals on either
side, dates in CA mode only, no clear text on the wire, follow and rescue'
: "${PYTHON3:=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}"
. "$SRCDIR/test/t/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

# Decisions written down here:
# - an identity refused by either side: exit 5, and the message says
#   which side refused ("the standby refused the primary", "the primary
#   refused the standby") and names the pin it saw; nothing is written;
# - a client without a certificate, or with one not trusted, gets HTTP
#   403 whose body is one X frame (code 5) naming the pin seen;
# - with pins, certificates' dates are not looked at; with tls_ca they
#   are, on both sides, and the primary's address must be in its
#   certificate;
# - a key file that others can read: exit 2, the file named;
# - without TLS, watch refuses a non-loopback address unless tls = off
#   is written (and a token is set).

if ! command -v openssl >/dev/null 2>&1; then
	test_skip 'mutual TLS' 'no openssl (Debian: openssl)'
	test_done
fi

# pin_of CERT: the pin of CERT's key, as the issue and openssl say.
pin_of() {
	printf 'sha256:%s\n' "$(openssl x509 -in "$1" -pubkey -noout |
		openssl pkey -pubin -outform der | sha256sum | cut -d" " -f1)"
}

ADDR=$TEST_IP:$TEST_PORT
VALID_FROM=20200101000000Z VALID_TO=20991231000000Z

# serve NAME [options]: a primary of src on ADDR logging to NAME.log,
# serving; sets WATCH_PID.
serve() {
	sv_name=$1; shift
	WATCH_LOG=$TRASH/$sv_name.log
	start_watch "$TRASH/src" "$TRASH/spool" "$@"
}

# fetch NAME [options]: a one-shot sync from ADDR into d-NAME.
fetch() {
	fe_name=$1; shift
	"$ASYNCREP" sync --data-dir "$TRASH/d-$fe_name" \
		--state-dir "$TRASH/st-$fe_name" --primary "$ADDR" "$@"
}

# untouched NAME: a refused sync wrote nothing into d-NAME.
untouched() {
	! [ -e "$TRASH/d-$1" ] || test -z "$(ls -A "$TRASH/d-$1")"
}

# ca_sign NAME CN FROM TO [SAN]: NAME.key and NAME.pem signed by the test
# CA, valid from FROM to TO (openssl ca: this openssl, 3.0, has no
# x509 -not_before).
ca_sign() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null &&
	chmod 600 "$1.key" &&
	{ echo "basicConstraints=CA:FALSE" &&
	  if [ -n "${5:-}" ]; then echo "subjectAltName=$5"; fi; } >"$1.ext" &&
	openssl ca -batch -config ca/ca.cnf -in "$1.csr" -out "$1.pem" \
		-startdate "$3" -enddate "$4" -extfile "$1.ext" -notext \
		>"$1.ca.log" 2>&1 || { cat "$1.ca.log"; return 1; }
}

# cli NAME: the options of certificate NAME.pem and key NAME.key.
cli() {
	echo "--tls-cert $TRASH/$1.pem --tls-key $TRASH/$1.key"
}

# own DIR: the options of the key and certificate keygen made in DIR.
own() {
	echo "--tls-cert $TRASH/$1/cert.pem --tls-key $TRASH/$1/key.pem"
}

test_expect_success 'setup: a tree, keys by keygen and by openssl, a CA' '
	mkdir -p src/sub &&
	printf "secret data\n" >src/a.txt &&
	head -c 300000 /dev/urandom >src/sub/big &&
	"$ASYNCREP" keygen p >p.pin 2>keygen.err &&
	"$ASYNCREP" keygen s >s.pin &&
	"$ASYNCREP" keygen x >x.pin &&
	PIN_P=$(cat p.pin) && PIN_S=$(cat s.pin) && PIN_X=$(cat x.pin) &&
	openssl req -x509 -newkey rsa:2048 -nodes -keyout op.key -out op.pem \
		-subj /CN=openssl-primary -days 2 2>/dev/null &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes \
		-keyout os.key -out os.pem -subj /CN=openssl-standby -days 2 \
		2>/dev/null &&
	chmod 600 op.key os.key &&
	mkdir ca && : >ca/index.txt && echo 1000 >ca/serial &&
	cat >ca/ca.cnf <<-EOF &&
	[ca]
	default_ca = test
	[test]
	dir = $TRASH/ca
	database = $TRASH/ca/index.txt
	new_certs_dir = $TRASH/ca
	serial = $TRASH/ca/serial
	certificate = $TRASH/ca/ca.pem
	private_key = $TRASH/ca/ca.key
	default_md = sha256
	policy = any
	unique_subject = no
	[any]
	commonName = supplied
	EOF
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout ca/ca.key -out ca/ca.pem -subj /CN=asyncrep-test-ca \
		-days 3650 2>/dev/null &&
	ca_sign srv primary "$VALID_FROM" "$VALID_TO" "IP:$TEST_IP" &&
	ca_sign srv-old primary 20200101000000Z 20210101000000Z "IP:$TEST_IP" &&
	ca_sign srv-new primary 20900101000000Z 20910101000000Z "IP:$TEST_IP" &&
	ca_sign srv-noip primary "$VALID_FROM" "$VALID_TO" "IP:192.0.2.1" &&
	ca_sign cli standby "$VALID_FROM" "$VALID_TO" &&
	ca_sign cli-old standby 20200101000000Z 20210101000000Z &&
	ca_sign cli-new standby 20900101000000Z 20910101000000Z &&
	"$PYTHON3" -c "import secrets; print(secrets.token_hex(32))" >token &&
	chmod 600 token
'

test_expect_success 'keygen: a key for its owner only, a certificate, its pin' '
	test "$(stat -c %a p/key.pem)" = 600 &&
	test "$(stat -c %a p)" = 700 &&
	openssl x509 -in p/cert.pem -noout -subject >subject &&
	grep -q asyncrep subject &&
	openssl pkey -in p/key.pem -noout &&
	test "$PIN_P" = "$(pin_of p/cert.pem)" &&
	test "$PIN_S" = "$(pin_of s/cert.pem)" &&
	grep -q "^sha256:[0-9a-f]\{64\}\$" p.pin &&
	test "$PIN_P" != "$PIN_S" &&
	cat keygen.err && grep -q "key.pem" keygen.err
'

test_expect_success 'keygen never replaces a key: exit 7, the file kept' '
	cp p/key.pem key.before &&
	test_must_fail 7 "$ASYNCREP" keygen p >out 2>err &&
	cat err && grep -q "exists" err &&
	test_cmp key.before p/key.pem &&
	test_must_fail 1 "$ASYNCREP" keygen 2>err &&
	grep -q "DIR" err
'

# ---------------------------------------------------------------------
# Pinned keys

test_expect_success 'pinned: the standby syncs over TLS 1.3' '
	serve pinned $(own p) \
		--tls-trust "$PIN_S, $PIN_X" &&
	grep -q "TLS 1.3 on $ADDR with key $PIN_P" pinned.log &&
	fetch pin1 $(own s) \
		--tls-trust "$PIN_P" &&
	trees_equal src d-pin1
'

test_expect_success 'status works over TLS' '
	cat >s.conf <<-EOF &&
	[standby]
	data_dir  = $TRASH/d-pin1
	state_dir = $TRASH/st-pin1
	primary   = $ADDR
	tls_cert  = $TRASH/s/cert.pem
	tls_key   = $TRASH/s/key.pem
	tls_trust = $PIN_P
	EOF
	"$ASYNCREP" status -c s.conf >status.out &&
	cat status.out &&
	grep -q "primary at change" status.out &&
	"$ASYNCREP" status -c s.conf --json >status.json &&
	grep -q "\"primary_reachable\":true" status.json
'

test_expect_success 'wrong pin on the standby: exit 5, the standby names the key it saw' '
	test_must_fail 5 fetch pin2 $(own s) --tls-trust "$PIN_X" 2>err &&
	cat err &&
	grep -q "the standby refused the primary $ADDR" err &&
	grep -qF "$PIN_P" err &&
	untouched pin2
'

test_expect_success 'a key the primary does not trust: exit 5, the primary names it' '
	test_must_fail 5 fetch pin3 $(own p) --tls-trust "$PIN_P" 2>err &&
	cat err &&
	grep -q "HTTP 403: the primary refused the standby.s key $PIN_P: not in tls_trust" err &&
	grep -q "refused the standby.s key $PIN_P" pinned.log &&
	untouched pin3
'

test_expect_success 'no client certificate: 403 with an X frame, any certificate: named' '
	curl -sk --noproxy "*" -o body -w "%{http_code}" \
		"https://$ADDR/v1/hello" >code &&
	test "$(cat code)" = 403 &&
	test "$(head -c 1 body)" = X &&
	grep -aq "the primary refused the standby: no client certificate" body &&
	curl -sk --noproxy "*" --cert op.pem --key op.key -o body2 \
		-w "%{http_code}" "https://$ADDR/v1/hello" >code &&
	test "$(cat code)" = 403 &&
	test "$(head -c 1 body2)" = X &&
	grep -aqF "$(pin_of op.pem)" body2 &&
	curl -sk --noproxy "*" --cert s/cert.pem --key s/key.pem -o body3 \
		-w "%{http_code}" "https://$ADDR/v1/hello" >code &&
	test "$(cat code)" = 200 &&
	test "$(head -c 1 body3)" = H
'

test_expect_success 'TLS 1.3 only; plain HTTP gets nothing' '
	code=0 &&
	{ curl -sk --noproxy "*" --cert s/cert.pem --key s/key.pem --tlsv1.2 \
		--tls-max 1.2 -o /dev/null "https://$ADDR/v1/hello" || code=$?; } &&
	test "$code" = 35 &&
	code=0 &&
	{ curl -s --noproxy "*" -o /dev/null "http://$ADDR/v1/hello" ||
		code=$?; } &&
	test "$code" != 0 &&
	test_must_fail 4 fetch plain 2>err &&
	untouched plain
'
stop_watch

test_expect_success 'openssl-made keys (RSA, P-384), pinned both ways' '
	serve openssl --tls-cert "$TRASH/op.pem" --tls-key "$TRASH/op.key" \
		--tls-trust "$(pin_of os.pem)" &&
	fetch ossl $(cli os) --tls-trust "$(pin_of op.pem)" &&
	trees_equal src d-ossl
'
stop_watch

test_expect_success 'the token stays a second factor' '
	serve token $(own p) \
		--tls-trust "$PIN_S" --auth-token-file "$TRASH/token" &&
	test_must_fail 5 fetch tok1 $(own s) --tls-trust "$PIN_P" 2>err &&
	cat err && grep -q "401" err && untouched tok1 &&
	fetch tok2 $(own s) \
		--tls-trust "$PIN_P" --auth-token-file "$TRASH/token" &&
	trees_equal src d-tok2
'
stop_watch

test_expect_success 'pins ignore dates: an expired certificate pinned is accepted' '
	serve old-pinned --tls-cert "$TRASH/srv-old.pem" \
		--tls-key "$TRASH/srv-old.key" --tls-trust "$(pin_of cli-new.pem)" &&
	fetch oldpin $(cli cli-new) --tls-trust "$(pin_of srv-old.pem)" &&
	trees_equal src d-oldpin
'
stop_watch

# ---------------------------------------------------------------------
# A CA

test_expect_success 'CA: certificates signed by tls_ca, on both sides' '
	serve ca --tls-cert "$TRASH/srv.pem" --tls-key "$TRASH/srv.key" \
		--tls-ca "$TRASH/ca/ca.pem" &&
	grep -q "standbys trusted by tls_ca" ca.log &&
	fetch ca1 $(cli cli) --tls-ca "$TRASH/ca/ca.pem" &&
	trees_equal src d-ca1
'

test_expect_success 'CA: an expired or not yet valid standby certificate is refused' '
	for c in cli-old cli-new; do
		test_must_fail 5 fetch $c $(cli $c) --tls-ca "$TRASH/ca/ca.pem" \
			2>err &&
		cat err &&
		grep -q "the primary refused the standby.s key $(pin_of $c.pem): not trusted by tls_ca" err &&
		untouched $c || return 1
	done &&
	grep -q "expired" ca.log &&
	grep -q "not yet valid" ca.log
'

test_expect_success 'CA: a certificate of another CA, or a self-signed one, is refused' '
	test_must_fail 5 fetch ca2 $(own s) --tls-ca "$TRASH/ca/ca.pem" 2>err &&
	cat err &&
	grep -q "the primary refused the standby.s key $PIN_S" err &&
	test_must_fail 5 fetch ca3 $(cli cli) --tls-ca "$TRASH/p/cert.pem" \
		2>err &&
	cat err &&
	grep -q "the standby refused the primary $ADDR: its key $(pin_of srv.pem) is not trusted by tls_ca" err &&
	untouched ca2 && untouched ca3
'
stop_watch

for srv in srv-old srv-new srv-noip; do
	test_expect_success "CA: the standby refuses a primary certificate ($srv)" '
		serve '"$srv"' --tls-cert "$TRASH/'"$srv"'.pem" \
			--tls-key "$TRASH/'"$srv"'.key" --tls-ca "$TRASH/ca/ca.pem" &&
		test_must_fail 5 fetch '"$srv"' $(cli cli) \
			--tls-ca "$TRASH/ca/ca.pem" 2>err &&
		cat err &&
		grep -q "the standby refused the primary $ADDR: its key $(pin_of '"$srv"'.pem)" err &&
		untouched '"$srv"'
	'
	stop_watch
done

# ---------------------------------------------------------------------
# Local mistakes

test_expect_success 'a key that others can read: refused, exit 2, the file named' '
	cp p/key.pem open.key && chmod 644 open.key &&
	test_must_fail 2 "$ASYNCREP" watch --data-dir "$TRASH/src" \
		--spool-dir "$TRASH/spool" --listen "$ADDR" \
		--tls-cert "$TRASH/p/cert.pem" --tls-key "$TRASH/open.key" \
		--tls-trust "$PIN_S" 2>err &&
	cat err && grep -q "tls_key .$TRASH/open.key. can be read by other users" err &&
	test_must_fail 2 fetch open --tls-cert "$TRASH/p/cert.pem" \
		--tls-key "$TRASH/open.key" --tls-trust "$PIN_S" 2>err &&
	cat err && grep -q "chmod 600" err &&
	untouched open
'

test_expect_success 'incomplete TLS settings: exit 2, what is missing named' '
	test_must_fail 2 fetch inc $(own s) 2>err &&
	grep -q "needs the peer.s identity" err &&
	test_must_fail 2 fetch inc --tls-trust "$PIN_P" 2>err &&
	grep -q "tls_trust in \[standby\] needs tls_cert" err &&
	test_must_fail 1 fetch inc --tls-trust "sha256:1234" 2>err &&
	grep -q "bad pins" err &&
	test_must_fail 2 fetch inc --tls-cert "$TRASH/s/cert.pem" \
		--tls-key "$TRASH/p/key.pem" --tls-trust "$PIN_P" 2>err &&
	grep -q "is not the key of the certificate" err
'

test_expect_success 'without TLS a non-loopback address needs tls = off (and a token)' '
	port=$("$PYTHON3" -c "import socket; s=socket.socket(); s.bind((\"0.0.0.0\", 0)); print(s.getsockname()[1])") &&
	test_must_fail 2 "$ASYNCREP" watch --data-dir "$TRASH/src" \
		--spool-dir "$TRASH/spool" --listen "0.0.0.0:$port" \
		--auth-token-file "$TRASH/token" 2>err &&
	cat err && grep -q "without TLS" err && grep -q "tls = off" err &&
	test_must_fail 2 "$ASYNCREP" watch --data-dir "$TRASH/src" \
		--spool-dir "$TRASH/spool" --listen "0.0.0.0:$port" --tls off \
		2>err &&
	grep -q "auth_token_file" err &&
	start_bg clear.log "$ASYNCREP" watch --data-dir "$TRASH/src" \
		--spool-dir "$TRASH/spool" --listen "0.0.0.0:$port" --tls off \
		--auth-token-file "$TRASH/token" &&
	WATCH_PID=$last_pid &&
	wait_for 10 grep -q "serving" clear.log &&
	stop_watch
'

# ---------------------------------------------------------------------
# On the wire: no file content and no token in clear (loopback capture).

SECRET=asyncrep-secret-$("$PYTHON3" -c "import secrets; print(secrets.token_hex(8))")

# capture FILE CMD...: CMD run while tcpdump writes the packets of ADDR
# to FILE.
capture() {
	cp_file=$1; shift
	tcpdump -i lo --immediate-mode -U -s 0 -w "$cp_file" "host $TEST_IP and tcp port $TEST_PORT" \
		>"$cp_file.log" 2>&1 &
	cp_pid=$!
	wait_for 10 grep -q "listening on" "$cp_file.log" || {
		kill "$cp_pid"; wait "$cp_pid"; return 1; }
	"$@"
	cp_st=$?
	sleep 0.3
	kill -INT "$cp_pid" && wait "$cp_pid"
	return $cp_st
}

why=
command -v tcpdump >/dev/null 2>&1 || why="no tcpdump (Debian: tcpdump)"
if [ -z "$why" ]; then
	timeout 5 tcpdump -i lo -c 1 -w /dev/null "tcp port 1" >probe.log 2>&1 &
	probe=$!
	if ! wait_for 4 grep -q "listening on" probe.log; then
		why="tcpdump cannot capture on lo: $(head -n 1 probe.log)"
	fi
	kill "$probe" 2>/dev/null
	wait "$probe" 2>/dev/null
fi
if [ -n "$why" ]; then
	test_skip 'no file content or token in clear on the wire' "$why"
else
	test_expect_success 'capture: in clear, content and token are seen (the control)' '
		mkdir -p src/wire &&
		for i in $(seq 400); do echo "$SECRET line $i"; done >src/wire/secret &&
		serve wire-plain --auth-token-file "$TRASH/token" &&
		capture plain.pcap fetch wire1 --auth-token-file "$TRASH/token" &&
		stop_watch &&
		grep -qaF "$SECRET" plain.pcap &&
		grep -qaF "$(cat token)" plain.pcap
	'
	test_expect_success 'capture: over TLS, neither content nor token is in clear' '
		serve wire-tls --auth-token-file "$TRASH/token" \
			$(own p) \
			--tls-trust "$PIN_S" &&
		capture tls.pcap fetch wire2 --auth-token-file "$TRASH/token" \
			$(own s) \
			--tls-trust "$PIN_P" &&
		stop_watch &&
		trees_equal src d-wire2 &&
		test "$(stat -c %s tls.pcap)" -gt 300000 &&
		! grep -qaF "$SECRET" tls.pcap &&
		! grep -qaF "$(cat token)" tls.pcap &&
		! grep -qa "secret data" tls.pcap &&
		! grep -qa "Authorization" tls.pcap
	'
fi

# ---------------------------------------------------------------------
# Follow and rescue over TLS: the rescue presents the primary's key, read
# from the primary's storage under --root, so that a standby pinning it
# completes with no change; a key given on the rescue's command line wins
# over the storage's.

. "$SRCDIR/test/t/lib-rescue.sh"

FAKE=/srv/asyncrep-t0050.$$
MNT=$TRASH/mnt

# tls_scenario NAME STANDBY: primary NAME (keys in NAME/keys, the
# configuration naming them under FAKE) followed by STANDBY over TLS,
# then stopped, a file written that no journal saw, and killed; its
# storage copied under MNT.
tls_scenario() {
	mkdir -p "$1/data" && echo before >"$1/data/pre" &&
	"$ASYNCREP" keygen "$1/keys" >"$1.pin" &&
	write_conf "$1" "$FAKE/$1/data" "$FAKE/$1/spool" 200ms &&
	cat >>"$TRASH/$1.conf" <<-EOF &&
	tls_cert = $FAKE/$1/keys/cert.pem
	tls_key = $FAKE/$1/keys/key.pem
	tls_trust = $PIN_S
	EOF
	start_primary "$1" --data-dir "$TRASH/$1/data" \
		--spool-dir "$TRASH/$1/spool" \
		--tls-cert "$TRASH/$1/keys/cert.pem" \
		--tls-key "$TRASH/$1/keys/key.pem" &&
	start_follow "$2" $(own s) --tls-trust "$(cat "$1.pin")" &&
	wait_for 20 trees_equal "$1/data" "$2/data" &&
	echo followed >"$1/data/followed" &&
	wait_for 10 trees_equal "$1/data" "$2/data" &&
	kill -STOP "$WATCH_PID" && wait_for 10 is_stopped "$WATCH_PID" &&
	echo unseen >"$1/data/unseen" &&
	kill9 "$WATCH_PID" &&
	mkdir -p "$MNT$FAKE/$1" && cp -a "$1/." "$MNT$FAKE/$1/"
}

test_expect_success 'follow over TLS, then a rescue with the primary key from --root' '
	tls_scenario r1 u1 &&
	start_rescue r1 --root "$MNT" --timeout 30s &&
	rescued_ok r1 u1 "$MNT$FAKE/r1/spool" &&
	grep -q "TLS 1.3 on $ADDR with key $(cat r1.pin)" r1.rescue.log &&
	grep -q "^found only by the compare: unseen$" "$MNT$FAKE/r1/spool/rescued" &&
	trees_equal r1/data u1/data
'

test_expect_success 'rescue: a key given on its command line wins over the storage' '
	stop_strays &&
	tls_scenario r2 u2 &&
	rm "$MNT$FAKE/r2/keys/key.pem" "$MNT$FAKE/r2/keys/cert.pem" &&
	"$ASYNCREP" keygen "$MNT$FAKE/r2/keys" >decoy.pin &&
	mkdir local && cp r2/keys/cert.pem r2/keys/key.pem local/ &&
	start_rescue r2 --root "$MNT" --timeout 30s \
		$(own local) &&
	rescued_ok r2 u2 "$MNT$FAKE/r2/spool" &&
	grep -q "with key $(cat r2.pin)" r2.rescue.log &&
	! grep -q "$(cat decoy.pin)" r2.rescue.log &&
	trees_equal r2/data u2/data
'

# changes_as KEYDIR ID: the HTTP status of GET /v1/changes naming ID over
# TLS with the key in KEYDIR; the answer's body in changes.body.
changes_as() {
	curl -sk --noproxy "*" --cert "$TRASH/$1/cert.pem" \
		--key "$TRASH/$1/key.pem" -o changes.body -w "%{http_code}" \
		"https://$ADDR/v1/changes?since=0&wait=0&gen=$(cat "$IDS_SPOOL/generation")&id=$2"
}

# Pins bound to ids, on two lines (one holds at most 198 bytes).
test_expect_success 'standbys = ID=PIN: an id is taken only from its key' '
	stop_strays &&
	cat >ids.conf <<-EOF &&
	[primary]
	data_dir  = $TRASH/src
	spool_dir = $TRASH/spool-ids
	listen    = $ADDR
	interval  = 0
	tls_cert  = $TRASH/p/cert.pem
	tls_key   = $TRASH/p/key.pem
	tls_trust = $PIN_S, $PIN_X
	standbys  = s1=$PIN_S
	standbys  = x1=$PIN_X, free
	EOF
	IDS_SPOOL=$TRASH/spool-ids &&
	WATCH_LOG=$TRASH/ids.log &&
	start_bg "$WATCH_LOG" "$ASYNCREP" watch -c ids.conf &&
	WATCH_PID=$last_pid &&
	wait_for 10 grep -q serving "$WATCH_LOG" &&
	test "$(changes_as s s1)" = 200 &&
	test "$(changes_as s free)" = 200 &&
	test "$(changes_as x x1)" = 200 &&
	test "$(changes_as s x1)" = 403 &&
	grep -a -q "standby id .x1. is bound to the key $PIN_X, not $PIN_S" \
		changes.body &&
	test "$(changes_as s ghost)" = 403 &&
	grep -a -q "standby id .ghost. is not in the standbys list" \
		changes.body &&
	! test -e spool-ids/acks/ghost &&
	test_must_fail 5 timeout 60 "$ASYNCREP" sync --follow \
		--data-dir "$TRASH/d-ids" --state-dir "$TRASH/st-ids" \
		--primary "$ADDR" $(own s) --tls-trust "$PIN_P" \
		--standby-id x1 2>err &&
	cat err &&
	grep -q "bound to the key" err
'

# Without a list, at most 64 ids get an ack file.
test_expect_success 'no standbys list: 64 ids, not 65' '
	stop_watch &&
	mv ids.log ids.1.log &&
	grep -v "^standbys" ids.conf | sed "s/spool-ids/spool-ids2/" >ids2.conf &&
	IDS_SPOOL=$TRASH/spool-ids2 &&
	start_bg "$TRASH/ids.log" "$ASYNCREP" watch -c ids2.conf &&
	WATCH_PID=$last_pid &&
	wait_for 10 grep -q serving "$TRASH/ids.log" &&
	i=0 &&
	while [ "$i" -lt 64 ]; do
		test "$(changes_as s "id$i")" = 200 || return 1
		i=$((i + 1))
	done &&
	test "$(ls spool-ids2/acks | wc -l)" -eq 64 &&
	test "$(changes_as s id64)" = 403 &&
	grep -a -q "standbys already have positions" changes.body &&
	test "$(changes_as s id3)" = 200
'

test_done

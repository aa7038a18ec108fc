#!/bin/sh
test_description='the hello negotiates the highest protocol version both
sides speak; peers without a common version get a clear refusal (10)'
. "$(dirname "$0")/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

FAKE="$SRCDIR/test/t/fake-primary.py"

# get_raw PATH OUT [curl options...]: the body and status of a request
# to the test primary; the HTTP status is in OUT.code.
get_raw() {
	p=$1 out=$2; shift 2
	curl -sS --noproxy '*' -o "$out" -w '%{http_code}' "$@" \
		"http://$TEST_IP:$TEST_PORT$p" >"$out.code"
}

# frame_info FILE: "TYPE LENGTH FIRST-U32" of the first frame in FILE.
frame_info() {
	"$PYTHON3" -c 'import struct, sys
b = open(sys.argv[1], "rb").read()
t, n = b[0:1].decode(), struct.unpack(">I", b[1:5])[0]
print(t, n, struct.unpack(">I", b[5:9])[0])' "$1"
}

test_expect_success 'setup: a primary of this release' '
	mkdir -p src spool sb/state &&
	printf "one\n" >src/a &&
	start_watch src spool --interval 0
'

# The highest version this release speaks, as its server chooses it.
test_expect_success 'the server chooses its highest version for the widest offer' '
	get_raw /v1/hello hmax -H "X-Asyncrep-Versions: 1-65535" &&
	set -- $(frame_info hmax) &&
	MAXV=$3 &&
	test "$1" = H && test "$MAXV" -ge 2 &&
	say "this release speaks versions 1 to $MAXV"
'

test_expect_success 'a hello without an offer is version 1, in the version 1 layout' '
	get_raw /v1/hello h1 &&
	test "$(cat h1.code)" = 200 &&
	# H, 4+4+1+32+1+len("asyncrep X")+8 bytes, version 1
	set -- $(frame_info h1) &&
	t=$1 n=$2 v=$3 &&
	test "$t" = H && test "$v" = 1 &&
	slen=$(printf "asyncrep %s" "$("$ASYNCREP" --version | sed -n "s/^asyncrep //p")" | wc -c) &&
	test "$n" -eq $((4 + 4 + 1 + 32 + 1 + slen + 8))
'

test_expect_success 'an offer of 1-2 gets version 2 and the server range' '
	get_raw /v1/hello h2 -H "X-Asyncrep-Versions: 1-2" &&
	test "$(cat h2.code)" = 200 &&
	set -- $(frame_info h2) &&
	t=$1 n=$2 v=$3 &&
	test "$t" = H && test "$v" = 2 &&
	"$PYTHON3" -c "import struct, sys
b = open(\"h2\", \"rb\").read()
lo, hi = struct.unpack(\">II\", b[-8:])
sys.exit(0 if (lo, hi) == (1, $MAXV) else 1)"
'

test_expect_success 'an offer above the server range gets an X frame with code 10' '
	get_raw /v1/hello h9 -H "X-Asyncrep-Versions: $((MAXV + 1))-$((MAXV + 3))" &&
	set -- $(frame_info h9) &&
	t=$1 n=$2 code=$3 &&
	test "$t" = X && test "$code" = 10 &&
	grep -q "versions 1 to $MAXV" h9
'

test_expect_success 'a malformed offer or version is 400' '
	get_raw /v1/hello hbad -H "X-Asyncrep-Versions: 2-1" &&
	test "$(cat hbad.code)" = 400 &&
	get_raw /v1/hello hbad2 -H "X-Asyncrep-Versions: one" &&
	test "$(cat hbad2.code)" = 400 &&
	get_raw /v1/manifest mbad -H "X-Asyncrep-Version: $((MAXV + 1))" &&
	test "$(cat mbad.code)" = 400 &&
	set -- $(frame_info mbad) &&
	t=$1 n=$2 code=$3 &&
	test "$t" = X && test "$code" = 10
'

test_expect_success 'a standby of this release negotiates its highest version with it' '
	sync_to sb/data sb/state -v >sync.out 2>&1 &&
	grep -q "protocol version $MAXV\$" sync.out &&
	trees_equal src sb/data
'

# fake MODE: start the fake primary in MODE on its own port (FPORT).
fake() {
	FPORT=$(free_port) &&
	start_bg "$TRASH/fake-$1.log" "$PYTHON3" "$FAKE" --mode "$1" \
		--listen "$TEST_IP:$FPORT" --tree "$TRASH/src" \
		--outside "$TRASH/outside" --ready-file "$TRASH/ready-$1" \
		--lifetime 120 &&
	wait_for 10 test -f "$TRASH/ready-$1"
}

# fake_sync MODE DIR: a one-shot sync of DIR from the fake of MODE.
fake_sync() {
	timeout 60 "$ASYNCREP" sync --data-dir "$2" --state-dir "$2.state" \
		--primary "$TEST_IP:$FPORT" -v
}

test_expect_success 'a version 1 primary: the standby speaks version 1 with it' '
	mkdir -p outside &&
	fake v1-only &&
	fake_sync v1-only v1 >v1.out 2>&1 &&
	grep -q "protocol version 1" v1.out &&
	trees_equal src v1 &&
	grep -q "GET /v1/hello (versions 1-$MAXV)" "$TRASH/fake-v1-only.log"
'

test_expect_success 'a primary of versions 98-99 only: refused with 10, nothing asked after' '
	fake wrong-version &&
	mkdir future &&
	test_must_fail 10 fake_sync wrong-version future 2>future.err &&
	grep -q "98 to 99" future.err &&
	! grep -v "GET /v1/hello" "$TRASH/fake-wrong-version.log" &&
	test -z "$(ls future)"
'

test_expect_success 'a primary that ignores the offer and answers 99: refused with 10' '
	fake bad-version &&
	mkdir bad &&
	test_must_fail 10 fake_sync bad-version bad 2>bad.err &&
	grep -q "version 99" bad.err &&
	test -z "$(ls bad)"
'

test_expect_success 'cleanup' '
	stop_watch
'

test_done

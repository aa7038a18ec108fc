#!/bin/sh
test_description='the HTTP surface of a primary: every route with its
method, and each malformed request answered with its status and reason'
. "$SRCDIR/test/t/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

# req METHOD PATH [BODY]: one request to the test primary. Prints the
# status, then the text of a text/plain answer or the frame types of an
# asyncrep one (e.g. "200 FDTZ"). BODY is Python bytes syntax.
req() {
	"$PYTHON3" -c 'import http.client, sys
conn = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=20)
body = eval(sys.argv[5]) if len(sys.argv) > 5 else None
conn.request(sys.argv[3], sys.argv[4], body=body)
r = conn.getresponse()
data = r.read()
if r.getheader("Content-Type") == "application/x-asyncrep":
    types, pos = "", 0
    while pos + 5 <= len(data):
        types += chr(data[pos])
        pos += 5 + int.from_bytes(data[pos + 1:pos + 5], "big")
    print(r.status, types + ("" if pos == len(data) else "?"))
else:
    print(r.status, data.decode(errors="replace").strip())' \
		"$TEST_IP" "$TEST_PORT" "$@"
}

# answer_is EXPECTED METHOD PATH [BODY]
answer_is() {
	expected=$1; shift
	echo "$expected" >expect &&
	req "$@" >actual &&
	test_cmp expect actual
}

# An N frame (a request for path, basis size 0), as Python bytes.
n_frame() {
	"$PYTHON3" -c 'import sys
p = sys.argv[1].encode()
pl = len(p).to_bytes(2, "big") + p + bytes(8)
print(repr(b"N" + len(pl).to_bytes(4, "big") + pl))' "$1"
}

test_expect_success 'setup: a primary serving a small tree' '
	mkdir src && echo hello >src/a && mkdir src/d &&
	start_watch "$TRASH/src" "$TRASH/spool" --interval 0
'

test_expect_success 'GET /v1/hello answers one H frame' '
	answer_is "200 H" GET /v1/hello
'

test_expect_success 'an unknown path is 404 whatever the method' '
	answer_is "404 unknown path" GET /v1/nope &&
	answer_is "404 unknown path" POST /v2/hello "b\"\"" &&
	grep -q "unknown path" watch.log
'

test_expect_success 'a known path with the wrong method is 405' '
	answer_is "405 wrong method" POST /v1/hello "b\"\"" &&
	answer_is "405 wrong method" GET /v1/files &&
	answer_is "405 wrong method" GET /v1/delta &&
	answer_is "405 wrong method" PUT /v1/manifest "b\"x\"" &&
	answer_is "405 wrong method" DELETE /v1/changes
'

test_expect_success 'a body on a GET route is refused' '
	answer_is "400 unexpected body" GET /v1/hello "b\"xyz\""
'

test_expect_success 'GET /v1/manifest: the tree, a subtree, bad paths' '
	answer_is "200 PEEPZ" GET /v1/manifest &&
	answer_is "200 PZ" GET "/v1/manifest?path=d" &&
	answer_is "400 invalid path" GET "/v1/manifest?path=../x" &&
	answer_is "404 no such directory" GET "/v1/manifest?path=a"
'

test_expect_success 'POST /v1/files: a file, a missing one, bad bodies' '
	answer_is "200 FDTZ" POST /v1/files "$(n_frame a)" &&
	answer_is "200 RZ" POST /v1/files "$(n_frame missing)" &&
	answer_is "200 FDTRZ" POST /v1/files "$(n_frame a)+$(n_frame d)" &&
	answer_is "400 no file requested" POST /v1/files "b\"\"" &&
	answer_is "400 malformed request frame" POST /v1/files \
		"b\"D\\0\\0\\0\\0\"" &&
	answer_is "400 truncated request body" POST /v1/files \
		"b\"N\\0\\0\"" &&
	long=$("$PYTHON3" -c "print(\"/\".join([\"y\" * 200] * 19))") &&
	answer_is "413 request body too large" POST /v1/files \
		"$(n_frame "$long")*300"
'

test_expect_success 'POST /v1/delta: empty and malformed requests' '
	answer_is "400 empty delta request" POST /v1/delta "b\"\"" &&
	answer_is "400 malformed signature" POST /v1/delta "$(n_frame a)" &&
	answer_is "400 unexpected frame in a signature" POST /v1/delta \
		"$(n_frame a)+$(n_frame a)"
'

test_expect_success 'GET /v1/changes: malformed arguments, another generation' '
	answer_is "400 malformed arguments" GET /v1/changes &&
	answer_is "400 malformed arguments" GET \
		"/v1/changes?since=x&gen=0123456789abcdef0123456789abcdef&id=a" &&
	answer_is "200 G" GET \
		"/v1/changes?since=0&gen=0123456789abcdef0123456789abcdef&id=a"
'

# A new spool starts with a compare of the whole tree (S), released at
# once (--interval 0).
test_expect_success 'GET /v1/changes of its own generation: a batch' '
	gen=$(cat spool/generation) &&
	wait_for 10 answer_is "200 SZ" GET \
		"/v1/changes?since=0&gen=$gen&id=t" &&
	test -f spool/acks/t
'

test_done

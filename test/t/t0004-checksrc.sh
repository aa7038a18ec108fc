#!/bin/sh
# t0004-checksrc: the sources keep the rules of build-aux/checksrc, and
# the script finds what it says it finds.
test_description='checksrc: banned functions, assignments in conditions, unchecked path snprintf'
. "$(dirname "$0")/lib.sh"

CHECKSRC="$SRCDIR/build-aux/checksrc"

test_expect_success 'core/, cmd/ and test/ pass checksrc (with its allow-list)' '
	"$PYTHON3" "$CHECKSRC" >out &&
	cat out &&
	grep -q "^checksrc: [0-9]* files, 0 violations" out
'

cat >bad.c <<'EOF'
/* strcpy(a, b) in a comment, and if ((x = 1)) too */
static const char *s = "sprintf(x) atoi(";
void
f(char *path, char *buf, char *err, size_t len, int n, int i)
{
	char c = '=';

	sprintf(buf, "%d", n);
	strcpy(buf, path);
	strcat (buf, path);
	n = atoi(path) + atol(path);
	if ((n = g()) != 0)
		h();
	while ((i += 2) < 10 && n <= 3 && n >= 1 && n != 2 && n == 4)
		h();
	if (n <<= 1)
		h();
	switch (n = 3) {
	}
	for (i = 0; (n = g()) > 0; i++)
		h();
	for (i = 0; i < n; i++)
		h();
	for (;;)
		break;
	do
		h();
	while (
	    (n = g()) > 0);
	snprintf(path, len, "%s", buf);
	(void)snprintf(buf, len, "%s/%s", path, err);
	if (n)
		snprintf(buf, len, "%s%s", path, err);
	else
		snprintf(buf, len, "x%d", n);
	snprintf(err, len, "cannot open %s/%s", path, buf);
	n = snprintf(path, len, "%s/x", buf);
	if (snprintf(path, len, "%s", buf) >= (int)len)
		h();
	n = my_sprintf(buf) + x.atoi(1) + p->strtok(2);
}
EOF

cat >expect <<'EOF'
bad.c:8: banned-function: sprintf()
bad.c:9: banned-function: strcpy()
bad.c:10: banned-function: strcat()
bad.c:11: banned-function: atoi()
bad.c:11: banned-function: atol()
bad.c:12: assign-in-condition: assignment in the condition of if
bad.c:14: assign-in-condition: assignment in the condition of while
bad.c:16: assign-in-condition: assignment in the condition of if
bad.c:18: assign-in-condition: assignment in the condition of switch
bad.c:20: assign-in-condition: assignment in the condition of for
bad.c:29: assign-in-condition: assignment in the condition of while
bad.c:30: unchecked-snprintf: snprintf into 'path' with its result ignored
bad.c:31: unchecked-snprintf: snprintf into 'buf' with its result ignored
bad.c:33: unchecked-snprintf: snprintf into 'buf' with its result ignored
EOF

test_expect_success 'each rule is found, on its line; the look-alikes are not' '
	test_must_fail 1 "$PYTHON3" "$CHECKSRC" --allow /dev/null bad.c >out &&
	grep "^bad.c:" out >actual &&
	test_cmp expect actual &&
	grep -qx "checksrc: 1 files, 14 violations, 0 allowed" out
'

test_expect_success 'the allow-list allows what it names, by text, not by line' '
	printf "%s\n" "# a comment" \
		"bad.c: banned-function: sprintf(buf, \"%d\", n);" \
		"bad.c: banned-function: strcpy(buf,   path);" \
		"bad.c: assign-in-condition: if (n = 3)" >allow &&
	test_must_fail 1 "$PYTHON3" "$CHECKSRC" --allow allow bad.c >out &&
	! grep -q "^bad.c:8:" out &&
	! grep -q "^bad.c:9:" out &&
	grep -q "^bad.c:10: banned-function: strcat()" out &&
	grep -q "^checksrc: stale allow-list entry (fixed? delete it): bad.c: assign-in-condition: if (n = 3)$" out &&
	grep -qx "checksrc: 1 files, 12 violations, 2 allowed" out &&
	sed -n "8,11p" bad.c >clean.c &&
	printf "%s\n" "clean.c: banned-function: sprintf(buf, \"%d\", n);" \
		"clean.c: banned-function: strcpy(buf, path);" \
		"clean.c: banned-function: strcat (buf, path);" \
		"clean.c: banned-function: n = atoi(path) + atol(path);" \
		"clean.c: banned-function: n = atoi(path) + atol(path);" >allow2 &&
	"$PYTHON3" "$CHECKSRC" --allow allow2 clean.c >out &&
	grep -qx "checksrc: 1 files, 0 violations, 5 allowed" out
'

test_expect_success 'a malformed allow-list is a usage error' '
	echo "bad.c sprintf" >allow3 &&
	test_must_fail 2 "$PYTHON3" "$CHECKSRC" --allow allow3 bad.c 2>err &&
	grep -q "allow3:1: not FILE: RULE: CODE" err
'

test_done

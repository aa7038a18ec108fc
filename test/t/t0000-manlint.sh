#!/bin/sh
# t0000-manlint: the manual pages are clean mdoc.
test_description='man pages pass mandoc -Tlint'
. "$(dirname "$0")/lib.sh"

if [ -z "${MANDOC:-}" ]; then
	test_skip 'mandoc -Tlint' 'mandoc not installed'
	test_done
fi

for page in asyncrep.1 asyncrep.conf.5; do
	test_expect_success "$page has no mandoc warning" '
		"$MANDOC" -Tlint -W warning "$SRCDIR/man/'"$page"'" >lint.out 2>&1 &&
		test_cmp /dev/null lint.out
	'
done

test_expect_success 'asyncrep.1 documents every exit status' '
	for n in $(sed -n "s/.*= \([0-9][0-9]*\),.*/\1/p" "$SRCDIR/core/error.h"); do
		grep -qx ".It $n" "$SRCDIR/man/asyncrep.1" ||
			{ echo "exit status $n undocumented"; return 1; }
	done
'

for cmd in watch sync; do
	test_expect_success "every config option of $cmd is documented" '
		"$ASYNCREP" '"$cmd"' --help >help.out &&
		sed -n "s/^ *--\([a-z-]*\) VALUE\$/\1/p" help.out >opts &&
		test -s opts &&
		while read -r opt; do
			key=$(echo "$opt" | tr - _) &&
			grep -q "^\.It Fl -$opt " "$SRCDIR/man/asyncrep.1" ||
				{ echo "--$opt missing from asyncrep.1"; return 1; }
			grep -q "^\.It Ic $key " "$SRCDIR/man/asyncrep.conf.5" ||
				{ echo "$key missing from asyncrep.conf.5"; return 1; }
		done <opts
	'
done

for cmd in watch sync verify rescue status keygen init; do
	test_expect_success "every option of $cmd is documented" '
		"$ASYNCREP" '"$cmd"' --help >help.out &&
		sed -n "s/^ *\(-., \)\{0,1\}--\([a-z-]*\) [^V].*/\2/p" help.out >opts &&
		test -s opts &&
		while read -r opt; do
			grep -q "^\.It .*Fl -$opt\( \|\$\)" "$SRCDIR/man/asyncrep.1" ||
				{ echo "--$opt missing from asyncrep.1"; return 1; }
		done <opts
	'
done

test_done

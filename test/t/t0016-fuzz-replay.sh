#!/bin/sh
test_description='every fuzz target replays its seed corpus without a crash'
. "$SRCDIR/test/t/lib.sh"

for target in fuzz-wire fuzz-signature fuzz-patch fuzz-config fuzz-spool fuzz-query \
	fuzz-pin fuzz-xattr fuzz-blocks fuzz-compress; do
	bin="$BUILDDIR/test/fuzz/$target"
	corpus="$SRCDIR/test/fuzz/corpus/$target"
	if ! test -x "$bin"; then
		test_skip "$target" "not built (a libFuzzer build runs it by hand)"
		continue
	fi
	test_expect_success "$target replays $(ls "$corpus" | wc -l) seeds" '
		"$bin" "$corpus" >out &&
		! grep -q "^not ok" out &&
		grep -q "^1\.\." out
	'
done

test_done

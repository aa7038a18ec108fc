#!/bin/sh
test_description='sync killed with SIGKILL mid-transfer, then rerun'
. "$SRCDIR/test/t/lib.sh"

test_expect_success 'setup: a tree of many files and one large file' '
	mkdir -p src &&
	"$PYTHON3" -c "
import os
for d in range(20):
    os.makedirs(\"src/d%02d\" % d, exist_ok=True)
    for f in range(100):
        with open(\"src/d%02d/f%03d\" % (d, f), \"wb\") as fh:
            fh.write(os.urandom(2000 + f * 37))
" &&
	head -c 60000000 /dev/urandom >src/large &&
	start_watch "$TRASH/src" "$TRASH/spool"
'

# Kill the sync at a few different moments; each rerun must complete and
# never leave a partial file visible under its real name.
for delay in 0.05 0.2 0.4; do
	test_expect_success "SIGKILL after ${delay}s, then a rerun completes" '
		start_bg sync.log "$ASYNCREP" sync --data-dir "$TRASH/dst" \
			--state-dir "$TRASH/state" --primary "$TEST_IP:$TEST_PORT" &&
		pid=$last_pid &&
		sleep '"$delay"' &&
		{ kill_wait $pid 0 || { cat sync.log; false; }; } &&
		"$PYTHON3" - <<-PY &&
		import hashlib, os
		# Every visible regular file is either absent or complete.
		for root, dirs, files in os.walk("dst"):
		    for f in files:
		        if f.startswith(".asyncrep-tmp."):
		            continue
		        p = os.path.join(root, f)
		        q = "src" + p[3:]
		        a = open(p, "rb").read()
		        b = open(q, "rb").read()
		        assert a == b, "partial file visible: " + p
		PY
		sync_to "$TRASH/dst" "$TRASH/state" &&
		trees_equal src dst &&
		find dst -name ".asyncrep-tmp.*" >tmpfiles &&
		test_cmp /dev/null tmpfiles
	'
	rm -rf "$TRASH/dst"
done

test_expect_success 'SIGKILL during a delta leaves the old version intact' '
	sync_to "$TRASH/dst" "$TRASH/state" &&
	cp dst/large old-large &&
	"$PYTHON3" -c "
f = open(\"src/large\", \"r+b\"); f.seek(30000000); f.write(b\"K\" * 100000); f.close()" &&
	start_bg sync.log "$ASYNCREP" sync --data-dir "$TRASH/dst" \
		--state-dir "$TRASH/state" --primary "$TEST_IP:$TEST_PORT" &&
	pid=$last_pid &&
	sleep 0.1 &&
	{ kill_wait $pid 0 || { cat sync.log; false; }; } &&
	{ cmp -s dst/large old-large || cmp -s dst/large src/large; } &&
	sync_to "$TRASH/dst" "$TRASH/state" &&
	trees_equal src dst
'

test_done

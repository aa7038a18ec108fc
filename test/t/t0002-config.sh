#!/bin/sh
# t0002-config: configuration file errors, all found before a command
# runs (so no network is involved), and how options combine with a file.
test_description='configuration file parsing'
. "$(dirname "$0")/lib.sh"

# A valid file with both sections, as in asyncrep.conf(5).
cat >good.conf <<'CONF'
# shared by every node
[primary]
data_dir  = /srv/data            ; what is replicated
spool_dir = /srv/asyncrep/spool  ; same storage as the data
listen    = 192.0.2.10:8873
interval  = 200ms

[standby]
data_dir  = /srv/replica
state_dir = /var/lib/asyncrep
primary   = [2001:db8::10]:8873
CONF

test_expect_success 'unknown key: exit 2 with file:line and the key' '
	printf "[standby]\ndata_dir = /r\n\nbogus_key = 1\n" >unknown.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c unknown.conf 2>err &&
	grep -q "^asyncrep: unknown.conf:4: unknown key .bogus_key. in section \[standby\]" err
'

test_expect_success 'unknown section: exit 2 with file:line' '
	printf "[standby]\ndata_dir = /r\n[rescue]\nroot = /mnt\n" >section.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c section.conf 2>err &&
	grep -q "section.conf:3: unknown section \[rescue\]" err
'

test_expect_success 'a key outside any section: exit 2' '
	printf "data_dir = /r\n" >nosection.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c nosection.conf 2>err &&
	grep -q "nosection.conf:1: key .data_dir. outside any section" err
'

test_expect_success 'duplicate key: exit 2 naming both lines' '
	printf "[standby]\ndata_dir = /a\ndata_dir = /b\n" >dup.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c dup.conf 2>err &&
	grep -q "dup.conf:3: key .data_dir.: duplicate .*line 2" err
'

test_expect_success 'bad duration: exit 2 with line, key and reason' '
	printf "[primary]\ninterval = 30\n" >dur.conf &&
	test_must_fail 2 "$ASYNCREP" watch -c dur.conf 2>err &&
	grep -q "dur.conf:2: key .interval.: bad duration .30.: a unit is needed" err &&
	printf "[standby]\nstall_timeout = 30x\n" >dur2.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c dur2.conf 2>err &&
	grep -q "dur2.conf:2: key .stall_timeout.: bad duration .30x." err &&
	printf "[standby]\nstall_timeout = 30\n" >dur3.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c dur3.conf 2>err &&
	grep -q "missing data_dir" err
'

test_expect_success 'bad address, size, number and path: exit 2 each' '
	printf "[standby]\nprimary = 10.0.0.1\n" >v1.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c v1.conf 2>err &&
	grep -q "v1.conf:2: key .primary.: bad address" err &&
	printf "[standby]\nbatch_size = 1Q\n" >v2.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c v2.conf 2>err &&
	grep -q "v2.conf:2: key .batch_size.: bad size" err &&
	printf "[standby]\nbatch_files = 0\n" >v3.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c v3.conf 2>err &&
	grep -q "v3.conf:2: key .batch_files.: .0. is out of range" err &&
	printf "[standby]\nstate_dir = var/lib\n" >v4.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c v4.conf 2>err &&
	grep -q "v4.conf:2: key .state_dir.: .var/lib. is not an absolute path" err
'

test_expect_success 'syntax error: exit 2 with the line' '
	printf "[standby]\n\ndata_dir /r\n" >syntax.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c syntax.conf 2>err &&
	grep -q "syntax.conf:3: syntax error" err
'

test_expect_success 'an over-long line is refused, not split' '
	{ printf "[standby]\ndata_dir = /"; printf "%0300d\n" 0; } >long.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c long.conf 2>err &&
	grep -q "long.conf:2: line too long" err
'

test_expect_success 'an error in the other section still refuses the file' '
	printf "[primary]\ninterval = fast\n" >other.conf &&
	cat good.conf >>other.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c other.conf 2>err &&
	grep -q "other.conf:2: key .interval." err
'

test_expect_success 'missing file: exit 2 naming it' '
	test_must_fail 2 "$ASYNCREP" sync -c no-such.conf 2>err &&
	grep -q "^asyncrep: no-such.conf: cannot open" err
'

test_expect_success 'a directory is not a config file' '
	mkdir adir &&
	test_must_fail 2 "$ASYNCREP" sync -c adir 2>err &&
	grep -q "adir: not a regular file" err
'

test_expect_success 'a control character is escaped in the message' '
	printf "[standby]\nprimary = \033[31mred\n" >esc.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c esc.conf 2>err &&
	grep -q "x1b\[31mred" err &&
	! grep -q "$(printf "\033")" err
'

# The good file is accepted: the only error left is the option's (status
# 1, not 2), which is checked after the file was read.
test_expect_success 'a good file is accepted' '
	test_must_fail 1 "$ASYNCREP" sync -c good.conf --batch-files 0 2>err &&
	grep -q -- "--batch-files" err &&
	! grep -q "good.conf" err &&
	test_must_fail 1 "$ASYNCREP" watch -c good.conf --threads 0 2>err &&
	grep -q -- "--threads" err
'

test_expect_success 'options override the file whatever their order' '
	test_must_fail 2 "$ASYNCREP" sync --state-dir /srv/replica/state \
		-c good.conf 2>err &&
	grep -q "data_dir and state_dir overlap" err &&
	test_must_fail 2 "$ASYNCREP" watch --spool-dir /srv/data/.spool \
		--config=good.conf 2>err &&
	grep -q "data_dir and spool_dir overlap" err
'

test_expect_success 'a file without a required key: exit 2 naming it' '
	printf "[standby]\ndata_dir = /r\nprimary = 127.0.0.1:1\n" >partial.conf &&
	test_must_fail 2 "$ASYNCREP" sync -c partial.conf 2>err &&
	grep -q "missing state_dir (set it in \[standby\] or with --state-dir)" err &&
	! grep -q "missing data_dir" err
'

test_done

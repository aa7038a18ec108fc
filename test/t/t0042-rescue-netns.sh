#!/bin/sh
test_description='rescue: the service address moves to the rescue node (network namespaces)'
: "${PYTHON3:=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}"
. "$SRCDIR/test/t/lib.sh"
. "$SRCDIR/test/t/lib-rescue.sh"

# Three nodes as network namespaces this test creates: the primary, the
# rescue node and the standby, joined by a bridge in the standby's
# namespace. The service address VIP sits on the primary's link; when the
# primary dies, the cluster (here: this script, as IPaddr2 would) moves
# it to the rescue node. The rescue is started before the address
# arrives (IP_FREEBIND), and the standby, still dialling VIP, reaches the
# rescue without being told anything. VIP is not a loopback address, so
# they speak TLS (without it the primary would refuse VIP unless tls =
# off were written): the rescue presents the primary's key, which the
# standby pins, and the token is the second factor.
why=
[ "$(id -u)" = 0 ] || why="not root"
[ -n "$why" ] || command -v ip >/dev/null 2>&1 || why="no ip (Debian: iproute2)"
NS=art$$
NSP=${NS}p NSR=${NS}r NSS=${NS}s
if [ -z "$why" ]; then
	if ip netns add "$NSP" 2>/dev/null; then
		ip netns del "$NSP"
	else
		why="ip netns add is not permitted here"
	fi
fi
if [ -n "$why" ]; then
	test_skip "rescue across network namespaces" "$why"
	test_done
fi

NET=10.213.77
VIP=$NET.10
PORT=8873
ADDR=$VIP:$PORT

test_cleanup() {
	for n in "$NSP" "$NSR" "$NSS"; do
		ip netns pids "$n" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
		ip netns del "$n" 2>/dev/null
	done
	# A veth that never left this namespace (setup failed halfway).
	ip link del "${NS}P" 2>/dev/null
	ip link del "${NS}R" 2>/dev/null
	return 0
}

# inns NS CMD...: run CMD in namespace NS.
inns() {
	n=$1; shift
	ip netns exec "$n" "$@"
}

test_expect_success 'setup: three namespaces on one bridge, VIP on the primary' '
	for n in $NSP $NSR $NSS; do
		ip netns add $n && ip -n $n link set lo up || return 1
	done &&
	ip -n $NSS link add br0 type bridge &&
	ip -n $NSS link set br0 up &&
	ip -n $NSS addr add $NET.3/24 dev br0 &&
	ip link add ${NS}P type veth peer name ${NS}Pb &&
	ip link set ${NS}P netns $NSP && ip link set ${NS}Pb netns $NSS &&
	ip link add ${NS}R type veth peer name ${NS}Rb &&
	ip link set ${NS}R netns $NSR && ip link set ${NS}Rb netns $NSS &&
	ip -n $NSS link set ${NS}Pb master br0 && ip -n $NSS link set ${NS}Pb up &&
	ip -n $NSS link set ${NS}Rb master br0 && ip -n $NSS link set ${NS}Rb up &&
	ip -n $NSP addr add $NET.1/24 dev ${NS}P && ip -n $NSP link set ${NS}P up &&
	ip -n $NSR addr add $NET.2/24 dev ${NS}R && ip -n $NSR link set ${NS}R up &&
	ip -n $NSP addr add $VIP/24 dev ${NS}P
'

test_expect_success 'setup: the primary serves VIP, the standby follows it' '
	mkdir -p p/data/sub && echo before >p/data/sub/f &&
	head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n" >token &&
	chmod 600 token &&
	"$ASYNCREP" keygen keys-p >pin-p &&
	"$ASYNCREP" keygen keys-s >pin-s &&
	cat >p.conf <<-EOF &&
	[primary]
	data_dir  = $TRASH/p/data
	spool_dir = $TRASH/p/spool
	listen    = $ADDR
	interval  = 30s
	auth_token_file = $TRASH/token
	tls_cert  = $TRASH/keys-p/cert.pem
	tls_key   = $TRASH/keys-p/key.pem
	tls_trust = $(cat pin-s)
	EOF
	start_bg watch.log inns $NSP "$ASYNCREP" watch -v -c "$TRASH/p.conf" &&
	WATCH_PID=$last_pid &&
	wait_for 10 grep -q serving watch.log &&
	start_bg follow.log inns $NSS "$ASYNCREP" sync --follow -v \
		--data-dir "$TRASH/s/data" --state-dir "$TRASH/s/state" \
		--primary $ADDR --auth-token-file "$TRASH/token" \
		--tls-cert "$TRASH/keys-s/cert.pem" \
		--tls-key "$TRASH/keys-s/key.pem" --tls-trust "$(cat pin-p)" &&
	FOLLOW_PID=$last_pid &&
	wait_for 20 trees_equal p/data s/data
'

test_expect_success 'the primary node dies with changes held in its spool' '
	for i in 1 2 3 4 5; do
		head -c $((i * 10000)) /dev/urandom >p/data/sub/n$i || return 1
	done &&
	mv p/data/sub/f p/data/moved &&
	wait_for 10 grep -qa moved p/spool/seg-*.log &&
	# The node is gone before its kernel could close anything: the
	# standby'"'"'s long-poll stays open, with nobody at the other end.
	ip -n $NSP link set ${NS}P down &&
	kill -KILL $WATCH_PID &&
	! trees_equal p/data s/data
'

test_expect_success 'the rescue starts before the address is there (IP_FREEBIND)' '
	start_bg rescue.log inns $NSR "$ASYNCREP" rescue -v -c "$TRASH/p.conf" \
		--timeout 60s --status-file "$TRASH/rescue.status" &&
	RESCUE_PID=$last_pid &&
	wait_for 10 grep -q "^listening $ADDR" rescue.status &&
	! inns $NSR ip -o addr show | grep -q "$VIP/"
'

test_expect_success 'the address moves: the standby completes through the rescue' '
	ip -n $NSP addr del $VIP/24 dev ${NS}P &&
	ip -n $NSR addr add $VIP/24 dev ${NS}R &&
	# What IPaddr2 does with a gratuitous ARP: the standby forgets the
	# dead node'"'"'s link address for VIP.
	ip -n $NSS neigh flush dev br0 &&
	wait_for 60 exited $RESCUE_PID &&
	wait $RESCUE_PID &&
	wait_for 20 exited $FOLLOW_PID &&
	wait $FOLLOW_PID &&
	grep -q "the replica is complete" follow.log &&
	# The dead connection ended by the rescue node'"'"'s reset to a
	# keepalive probe, not by the stall timeout.
	! grep -q "Operation too slow" follow.log &&
	grep -q "^asyncrep rescue completed" rescue.log &&
	grep -q "TLS 1.3 on $ADDR with key $(cat pin-p)" rescue.log &&
	test -f p/spool/rescued &&
	trees_equal p/data s/data
'

test_done

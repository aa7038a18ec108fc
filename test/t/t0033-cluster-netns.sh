#!/bin/sh
test_description='the example cluster on three real Corosync/Pacemaker nodes in namespaces: the primary node killed'
: "${PYTHON3:=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}"
. "$SRCDIR/test/t/lib.sh"

# Three nodes, each corosync + pacemakerd as PID 1's children of its own
# network, mount, PID and UTS namespace, joined by veth links on a bridge
# (knet over UDP). hooks/pacemaker-example.xml is loaded as the docs say
# (one cibadmin --replace of the configuration), changed only where a
# test must: no fencing devices (stonith off), the agents under this
# run's provider, the addresses of these links, and the "NAS" a directory
# that node-a bind-mounts itself (its fstab) and the storage resource
# bind-mounts on node-c. Then node-a is killed (every process of its PID
# namespace, its link down) while the standby has missed changes, and the
# standby must complete, identical to what node-a had on disk.
: "${OCF_ROOT:=/usr/lib/ocf}"
PCMK_DIR=/var/lib/pacemaker
PROVIDER=asyncrep-t$$
OCF_DIR=$OCF_ROOT/resource.d/$PROVIDER
NS=mc$$
NET=10.214.1
INITS= FOLLOW_PID= OCF_INSTALLED=

skip_all() {
	test_skip 'three-node cluster in namespaces' "$1"
	test_done
}
[ "$(id -u)" = 0 ] || skip_all 'needs root'
for c in corosync pacemakerd crm_mon cibadmin crm_node nsenter unshare ip setsid flock; do
	command -v "$c" >/dev/null 2>&1 || skip_all "$c not found"
done
[ -r "$OCF_ROOT/resource.d/heartbeat/Filesystem" ] || skip_all 'no ocf:heartbeat:Filesystem (resource-agents)'
[ -d "$PCMK_DIR/cib" ] || skip_all "no $PCMK_DIR/cib"
ip netns add "${NS}x" 2>/dev/null || skip_all 'ip netns add is not permitted here'
ip netns del "${NS}x"
# The same lock as t0031: one test cluster at a time on this machine.
exec 9<"$PCMK_DIR/cib" && flock -n 9 || skip_all "another run holds the lock on $PCMK_DIR/cib"
for s in /proc/[0-9]*/comm; do
	case $(cat "$s" 2>/dev/null) in
	corosync|pacemakerd) skip_all 'a cluster already runs on this machine' ;;
	esac
done

test_cleanup() {
	[ -n "$FOLLOW_PID" ] && kill -KILL "$FOLLOW_PID" 2>/dev/null
	for p in $INITS; do kill -KILL "$p" 2>/dev/null; done
	[ -z "$INITS" ] || sleep 0.5
	# The jobs that started the nodes (unshare, reaping PID 1), and the
	# one that started the standby, so that lib.sh's wait returns.
	for f in "$TRASH"/node-?/unshare.pid "$TRASH/nsenter.pid"; do
		[ -s "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
	done
	# nsenter itself, the standby's parent: it stopped itself when the
	# standby was stopped (job control), and SIGCONT went to the standby
	# only, so it would outlive the test, stopped.
	pkill -KILL -f "$TRASH/standby.conf" 2>/dev/null
	for n in a b c br; do ip netns del "$NS$n" 2>/dev/null; done
	[ -n "$OCF_INSTALLED" ] && rm -rf "$OCF_DIR"
	return 0
}

# nsx NODE CMD...: CMD in every namespace of NODE (a, b or c).
nsx() {
	nx=$1; shift
	nsenter -t "$(cat "$TRASH/node-$nx/init.pid")" -a "$@"
}

# child_of: the pid of a child of the process CHILD_OF.
child_of() {
	for s in /proc/[0-9]*/stat; do
		read -r c_line <"$s" 2>/dev/null || continue
		set -- ${c_line##*) }
		# after the name: state, then the parent's pid
		if [ "$2" = "$CHILD_OF" ]; then
			c_p=${s#/proc/}; echo "${c_p%/stat}"; return 0
		fi
	done
	return 1
}

# poll SECS CMD...: CMD every 0.25 s until it succeeds, for SECS at most.
poll() {
	p_n=$(($1 * 4)); shift
	while [ "$p_n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		p_n=$((p_n - 1)); sleep 0.25
	done
	"$@"
}

# mon_has NODE PATTERN: crm_mon on NODE shows PATTERN (extended regexp).
mon_has() {
	nsx "$1" crm_mon -1 >"$TRASH/mon.out" 2>&1 && grep -Eq "$2" "$TRASH/mon.out"
}

MNT=$TRASH/mnt
cat >"$TRASH/node.sh" <<'EOF2'
#!/bin/sh
# node.sh NAME DIR [OWN-MOUNT]: PID 1 of a node's namespaces.
set -e
name=$1 D=$2
hostname "$name"
mount --make-rprivate /
mount --bind "$D/lib/pacemaker" /var/lib/pacemaker
mount --bind "$D/etc/corosync" /etc/corosync
mount --bind "$D/lib/corosync" /var/lib/corosync
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /dev/shm
mount --bind "$D/log" /var/log/pacemaker
mkdir -p /run/asyncrep /run/crm
# Filesystem wants modprobe, which a bind mount does not need.
command -v modprobe >/dev/null 2>&1 || mount --bind "$D/../sbin" /usr/local/sbin
[ -z "$3" ] || mount --bind "$3" "$D/../mnt"
export PCMK_logfile=/var/log/pacemaker/pacemaker.log
corosync -f >"$D/corosync.out" 2>&1 &
sleep 0.5
pacemakerd -f >"$D/pacemakerd.out" 2>&1 &
echo $! >"$D/pcmk.pid"
wait
EOF2
chmod 755 "$TRASH" "$TRASH/node.sh"

test_expect_success 'setup: three namespaces on a bridge, node state, the agents' '
	mkdir -p "$TRASH/sbin" "$MNT" "$TRASH/nas/data/d" "$TRASH/nas/spool" \
		"$TRASH/replica" "$TRASH/bstate" &&
	printf "#!/bin/sh\nexit 0\n" >"$TRASH/sbin/modprobe" &&
	chmod 755 "$TRASH/sbin/modprobe" &&
	[ -d /usr/local/sbin ] && [ -d /var/lib/corosync ] && [ -d /etc/corosync ] &&
	[ -d /var/log/pacemaker ] &&
	ip netns add ${NS}br && ip -n ${NS}br link set lo up &&
	ip -n ${NS}br link add br0 type bridge && ip -n ${NS}br link set br0 up &&
	i=0 &&
	for n in a b c; do
		i=$((i + 1)) &&
		ip netns add $NS$n && ip -n $NS$n link set lo up &&
		ip link add $NS${n}0 type veth peer name $NS${n}1 &&
		ip link set $NS${n}0 netns $NS$n &&
		ip link set $NS${n}1 netns ${NS}br &&
		ip -n ${NS}br link set $NS${n}1 master br0 up &&
		ip -n $NS$n link set $NS${n}0 name eth0 &&
		ip -n $NS$n addr add $NET.$i/24 dev eth0 &&
		ip -n $NS$n link set eth0 up &&
		D=$TRASH/node-$n &&
		mkdir -p $D/lib/pacemaker/cib $D/lib/pacemaker/pengine \
			$D/lib/pacemaker/blackbox $D/lib/pacemaker/cores \
			$D/lib/corosync $D/etc/corosync $D/log &&
		printf "<cib validate-with=\"pacemaker-3.7\" epoch=\"1\" num_updates=\"0\" admin_epoch=\"0\"><configuration><crm_config><cluster_property_set id=\"cib-bootstrap-options\"><nvpair id=\"dc\" name=\"dc-deadtime\" value=\"2s\"/></cluster_property_set></crm_config><nodes/><resources/><constraints/></configuration><status/></cib>\n" \
			>$D/lib/pacemaker/cib/cib.xml &&
		chown -R hacluster:haclient $D/lib/pacemaker $D/log &&
		chmod 750 $D/lib/pacemaker/* &&
		chmod 600 $D/lib/pacemaker/cib/cib.xml &&
		{
			printf "totem {\n\tversion: 2\n\tcluster_name: asyncrep-t0033\n\ttransport: knet\n\tcrypto_cipher: none\n\tcrypto_hash: none\n\ttoken: 1000\n}\nnodelist {\n"
			for j in 1 2 3; do
				printf "\tnode {\n\t\tring0_addr: $NET.$j\n\t\tname: node-%s\n\t\tnodeid: $j\n\t}\n" \
					$(echo abc | cut -c$j)
			done
			printf "}\nquorum {\n\tprovider: corosync_votequorum\n}\nlogging {\n\tto_logfile: yes\n\tlogfile: /var/log/pacemaker/corosync.log\n\tto_syslog: no\n\tto_stderr: no\n}\n"
		} >$D/etc/corosync/corosync.conf || return 1
	done &&
	mkdir -p "$OCF_DIR" && OCF_INSTALLED=1 &&
	cp "$SRCDIR/hooks/asyncrep-watch" "$SRCDIR/hooks/asyncrep-rescue" "$OCF_DIR/" &&
	chmod 755 "$OCF_DIR" "$OCF_DIR/asyncrep-watch" "$OCF_DIR/asyncrep-rescue"
'

test_expect_success 'the primary and the standby configuration, the data' '
	head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n" >"$TRASH/token" &&
	chmod 600 "$TRASH/token" &&
	printf "[primary]\ndata_dir = %s/data\nspool_dir = %s/spool\nlisten = $NET.10:8873\ninterval = 200ms\nauth_token_file = %s\nstandbys = node-b\ntls = off\n" \
		"$MNT" "$MNT" "$TRASH/token" >"$TRASH/nas/asyncrep.conf" &&
	printf "[standby]\ndata_dir = %s\nstate_dir = %s\nprimary = $NET.10:8873\nauth_token_file = %s\nstandby_id = node-b\ntls = off\n" \
		"$TRASH/replica" "$TRASH/bstate" "$TRASH/token" >"$TRASH/standby.conf" &&
	for i in $(seq 1 50); do
		head -c $((i * 1000)) /dev/urandom >"$TRASH/nas/data/f$i" || return 1
	done &&
	echo hi >"$TRASH/nas/data/d/x" &&
	"$PYTHON3" - "$SRCDIR/hooks/pacemaker-example.xml" "$TRASH" "$PROVIDER" "$ASYNCREP" "$NET" <<-PY
	import sys, xml.etree.ElementTree as ET
	src, trash, provider, binary, net = sys.argv[1:]
	t = ET.parse(src); c = t.getroot()
	res = c.find("resources")
	for p in [p for p in res if p.get("class") == "stonith"]:
	    res.remove(p)
	for nv in c.iter("nvpair"):
	    if nv.get("name") == "stonith-enabled":
	        nv.set("value", "false")
	ET.SubElement(c.find("crm_config")[0], "nvpair", id="opt-dc", name="dc-deadtime", value="2s")
	def setp(pid, name, value):
	    for p in c.iter("primitive"):
	        if p.get("id") == pid:
	            ia = p.find("instance_attributes")
	            for nv in ia:
	                if nv.get("name") == name:
	                    nv.set("value", value); return
	            ET.SubElement(ia, "nvpair", id=pid + "-" + name, name=name, value=value)
	for p in c.iter("primitive"):
	    if p.get("provider") == "asyncrep":
	        p.set("provider", provider)
	for r in ("primary-watch", "primary-rescue"):
	    setp(r, "binary", binary)
	    setp(r, "config", trash + "/mnt/asyncrep.conf")
	setp("primary-rescue", "timeout", "60s")
	setp("primary-vip", "ip", net + ".10")
	setp("primary-vip", "nic", "eth0")
	setp("primary-storage", "device", trash + "/nas")
	setp("primary-storage", "directory", trash + "/mnt")
	setp("primary-storage", "fstype", "none")
	setp("primary-storage", "options", "bind")
	t.write(trash + "/cluster.xml")
	PY
'

test_expect_success 'three nodes up, online, with a DC' '
	for n in a b c; do
		own= && { [ $n != a ] || own=$TRASH/nas; } &&
		setsid ip netns exec $NS$n unshare -m -p -f -u --mount-proc \
			"$TRASH/node.sh" node-$n "$TRASH/node-$n" $own \
			>"$TRASH/node-$n/init.out" 2>&1 </dev/null &
		echo $! >"$TRASH/node-$n/unshare.pid"
	done &&
	for n in a b c; do
		# PID 1 of the node: the child of unshare (setsid and ip exec it).
		poll 20 test -s "$TRASH/node-$n/pcmk.pid" &&
		CHILD_OF=$(cat "$TRASH/node-$n/unshare.pid") &&
		child_of >"$TRASH/node-$n/init.pid" &&
		INITS="$INITS $(cat "$TRASH/node-$n/init.pid")" || return 1
	done &&
	poll 90 mon_has c "Online: \[ node-a node-b node-c \]" &&
	poll 30 mon_has c "Current DC: node-" &&
	nsx c crm_node -l
'

test_expect_success 'the example loaded with one cibadmin --replace: the primary on node-a, no rescue' '
	nsx a cibadmin --replace --scope configuration --xml-file "$TRASH/cluster.xml" &&
	poll 60 mon_has c "primary-watch.*Started node-a" &&
	sleep 5 &&
	nsx c crm_mon -1 --include=failures >"$TRASH/before.out" 2>&1 &&
	cat "$TRASH/before.out" &&
	grep -Eq "primary-vip.*Started node-a" "$TRASH/before.out" &&
	grep -Eq "primary-node.*Started node-a" "$TRASH/before.out" &&
	! grep -E "primary-(storage|rescue).*(Started|Starting)" "$TRASH/before.out" &&
	! grep -q "Failed" "$TRASH/before.out" &&
	nsx a mountpoint "$MNT" &&
	test -s "$TRASH/nas/spool/generation"
'

test_expect_success 'the standby follows node-a' '
	{ nsx b setsid sh -c "exec \"$ASYNCREP\" sync --follow -v -c \"$TRASH/standby.conf\" >\"$TRASH/follow.log\" 2>&1" & echo $! >"$TRASH/nsenter.pid"; } &&
	poll 20 grep -q "following $NET.10:8873" "$TRASH/follow.log" &&
	for d in /proc/[0-9]*; do
		if tr "\000" " " <$d/cmdline 2>/dev/null |
			grep -q "^$ASYNCREP sync --follow -v -c $TRASH/standby.conf"; then
			FOLLOW_PID=${d#/proc/}
		fi
	done 2>/dev/null &&
	test -n "$FOLLOW_PID" &&
	poll 20 diff -r "$TRASH/nas/data" "$TRASH/replica"
'

test_expect_success 'node-a killed while the standby missed changes: rescue on node-c, standby complete' '
	kill -STOP $FOLLOW_PID &&
	nsx a sh -c "cd \"$MNT/data\" && for i in \$(seq 1 30); do head -c 5000 /dev/urandom >new\$i || exit 1; done && echo changed >f1 && rm f2 && mv f3 d/f3moved && mkdir e && echo z >e/z" &&
	sleep 1 &&
	set -- $INITS &&
	kill -KILL $1 &&
	ip -n ${NS}br link set ${NS}a1 down &&
	t0=$(date +%s) &&
	kill -CONT $FOLLOW_PID &&
	poll 90 grep -q "the replica is complete" "$TRASH/follow.log" &&
	echo "complete after $(($(date +%s) - t0)) s" &&
	poll 30 mon_has c "primary-rescue.*Started node-c" &&
	nsx c crm_mon -1 --include=failures >"$TRASH/after.out" 2>&1 &&
	cat "$TRASH/after.out" &&
	grep -Eq "primary-vip.*Started node-c" "$TRASH/after.out" &&
	grep -Eq "primary-storage.*Started node-c" "$TRASH/after.out" &&
	diff -r "$TRASH/nas/data" "$TRASH/replica"
'

test_expect_success 'the application promoted on node-b after the rescue' '
	poll 30 mon_has c "Promoted: \[ node-b \]"
'

test_done

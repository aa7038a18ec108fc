#!/bin/sh
test_description='the example cluster of hooks/pacemaker-example.xml, loaded as the docs say, under crm_simulate'
. "$SRCDIR/test/t/lib.sh"

# No cluster runs: cibadmin writes a CIB file (CIB_file), which gets the
# example's configuration section in one --replace as the docs say, and
# crm_simulate runs the scheduler on it: a cold start of the three nodes,
# then node-a lost, then the watch failing on a healthy node-a. The
# agents are never run, so none needs to be installed.
EXAMPLE=$SRCDIR/hooks/pacemaker-example.xml
for c in cibadmin crm_simulate crm_mon crm_resource; do
	command -v "$c" >/dev/null 2>&1 || {
		test_skip 'cluster example' "$c not found (apt-get install pacemaker-cli-utils)"
		test_done
	}
done

# The empty CIB of a fresh cluster (cibadmin's own, in the newest schema
# it knows), with quorum.
test_expect_success 'an empty CIB' '
	cibadmin --empty >"$TRASH/empty.xml" &&
	sed "1s/^<cib /<cib have-quorum=\"1\" /" "$TRASH/empty.xml" >"$TRASH/fresh.xml" &&
	grep -q "have-quorum=\"1\"" "$TRASH/fresh.xml"
'

# simulate CIB OUT ARGS...: one transition of crm_simulate on the CIB
# file CIB, its result in OUT.xml (a CIB), its actions in OUT.graph and
# the resources' placement after it in OUT.state, a line "id role node"
# each ("id Stopped -" for one that runs nowhere; a clone instance by the
# clone's primitive). crm_simulate's own text changes when its output is
# not a terminal, so only its XML is read.
simulate() {
	s_cib=$1 s_out=$2; shift 2
	crm_simulate -x "$s_cib" -S -s -O "$s_out.xml" -G "$s_out.graph" "$@" \
		>"$s_out.log" 2>&1 || { cat "$s_out.log"; return 1; }
	CIB_file=$s_out.xml crm_mon -1 --output-as=xml >"$s_out.mon" 2>&1 ||
		{ cat "$s_out.mon"; return 1; }
	"$PYTHON3" - "$s_out.mon" "$s_out.graph" >"$s_out.state" <<-PY || return 1
	import sys, xml.etree.ElementTree as ET
	for r in ET.parse(sys.argv[1]).getroot().iter("resource"):
	    nodes = [n.get("name") for n in r.findall("node")]
	    print(r.get("id").split(":")[0], r.get("role"), nodes[0] if nodes else "-")
	for a in ET.parse(sys.argv[2]).getroot().iter():
	    if a.tag in ("rsc_op", "crm_event") and a.get("operation_key"):
	        print("action", a.get("operation_key"), a.get("on_node"))
	PY
	cat "$s_out.state"
}

# placed OUT RSC ROLE NODE: after OUT's transition RSC (or an instance of
# it) has ROLE on NODE; placed OUT RSC Stopped -: it runs nowhere.
placed() {
	grep -qx "$2 $3 $4" "$1.state"
}

# ban_watch CIB COPY: COPY is CIB with the watch banned from node-a, as
# migration-threshold or a failed start leaves it.
ban_watch() {
	cp "$1" "$2" &&
	CIB_file=$2 crm_resource --ban --resource primary-watch --node node-a \
		>/dev/null 2>&1
}

# acted OUT KEY NODE: OUT's transition has the action KEY on NODE.
acted() {
	grep -qx "action $2 $3" "$1.state"
}

test_expect_success 'the example loads with one cibadmin --replace' '
	cp "$TRASH/fresh.xml" "$TRASH/cib.xml" &&
	CIB_file=$TRASH/cib.xml cibadmin --replace --scope configuration \
		--xml-file "$EXAMPLE" &&
	CIB_file=$TRASH/cib.xml cibadmin --query >"$TRASH/q.xml" &&
	grep -q "id=\"primary-rescue\"" "$TRASH/q.xml" &&
	grep -q "resource-discovery=\"never\"" "$TRASH/q.xml"
'

test_expect_success 'cold start: VIP and watch on node-a, storage and rescue stopped' '
	simulate "$TRASH/cib.xml" "$TRASH/cold" \
		--node-up node-a --node-up node-b --node-up node-c &&
	placed "$TRASH/cold" primary-watch Started node-a &&
	placed "$TRASH/cold" primary-vip Started node-a &&
	placed "$TRASH/cold" primary-node Started node-a &&
	placed "$TRASH/cold" primary-storage Stopped - &&
	placed "$TRASH/cold" primary-rescue Stopped - &&
	! grep "primary-vip allocation score on node-a: -INFINITY" "$TRASH/cold.log"
'

test_expect_success 'no probe of the storage on node-a or node-b' '
	acted "$TRASH/cold" primary-storage_monitor_0 node-c &&
	! acted "$TRASH/cold" primary-storage_monitor_0 node-a &&
	! acted "$TRASH/cold" primary-storage_monitor_0 node-b
'

test_expect_success 'the application is promoted on node-a' '
	placed "$TRASH/cold" app Promoted node-a &&
	placed "$TRASH/cold" app Unpromoted node-b
'

test_expect_success 'node-a lost: fenced, then VIP, storage and rescue on node-c' '
	simulate "$TRASH/cold.xml" "$TRASH/lost" --node-fail node-a &&
	grep -q "^action stonith-node-a-reboot node-a\$" "$TRASH/lost.state" &&
	placed "$TRASH/lost" primary-vip Started node-c &&
	placed "$TRASH/lost" primary-storage Started node-c &&
	placed "$TRASH/lost" primary-rescue Started node-c &&
	placed "$TRASH/lost" primary-watch Stopped - &&
	placed "$TRASH/lost" app Promoted node-b
'

test_expect_success 'the rescue after the storage, the storage after the VIP, the promotion after the rescue' '
	"$PYTHON3" - "$TRASH/lost.graph" <<-PY
	import sys, xml.etree.ElementTree as ET
	g = ET.parse(sys.argv[1]).getroot()
	def deps(key):
	    for s in g.iter("synapse"):
	        a = s.find("action_set")[0]
	        if a.get("operation_key") == key:
	            return {t.get("operation_key") for i in s.iter("inputs") for t in i.iter() if t.get("operation_key")}
	    sys.exit("no action " + key)
	for then, first in (("primary-rescue_start_0", "primary-storage_start_0"),
	                    ("primary-storage_start_0", "primary-vip_start_0"),
	                    ("app-clone_promote_0", "primary-rescue_start_0")):
	    d = deps(then)
	    assert first in d, (then, d)
	PY
'

test_expect_success 'the watch failing on a healthy node-a is restarted there, no rescue' '
	simulate "$TRASH/cold.xml" "$TRASH/fail" \
		-i primary-watch_monitor_10000@node-a=1 &&
	acted "$TRASH/fail" primary-watch_start_0 node-a &&
	placed "$TRASH/fail" primary-watch Started node-a &&
	placed "$TRASH/fail" primary-vip Started node-a &&
	placed "$TRASH/fail" primary-rescue Stopped - &&
	placed "$TRASH/fail" primary-storage Stopped -
'

# The watch banned from node-a, which stays up.
test_expect_success 'the watch banned from a healthy node-a: no rescue' '
	ban_watch "$TRASH/cold.xml" "$TRASH/banned.xml" &&
	simulate "$TRASH/banned.xml" "$TRASH/ban" &&
	placed "$TRASH/ban" primary-watch Stopped - &&
	placed "$TRASH/ban" primary-vip Started node-a &&
	placed "$TRASH/ban" primary-rescue Stopped - &&
	placed "$TRASH/ban" primary-storage Stopped -
'

# The watch unable to start on a cold start (a bad configuration, say):
# the address may then go to node-c, but no rescue while node-a is up.
test_expect_success 'cold start with the watch banned from node-a: no rescue anywhere' '
	ban_watch "$TRASH/cib.xml" "$TRASH/nowatch.xml" &&
	simulate "$TRASH/nowatch.xml" "$TRASH/nw" \
		--node-up node-a --node-up node-b --node-up node-c &&
	placed "$TRASH/nw" primary-node Started node-a &&
	placed "$TRASH/nw" primary-rescue Stopped - &&
	placed "$TRASH/nw" primary-storage Stopped -
'

test_expect_success 'node-a put in standby: a switchover to a rescue on node-c' '
	cp "$TRASH/cold.xml" "$TRASH/standby.xml" &&
	CIB_file=$TRASH/standby.xml crm_attribute --node node-a --name standby \
		--update on >/dev/null 2>&1 &&
	simulate "$TRASH/standby.xml" "$TRASH/sb" &&
	placed "$TRASH/sb" primary-watch Stopped - &&
	placed "$TRASH/sb" primary-node Stopped - &&
	placed "$TRASH/sb" primary-vip Started node-c &&
	placed "$TRASH/sb" primary-storage Started node-c &&
	placed "$TRASH/sb" primary-rescue Started node-c
'

# node-a rejoining stops the rescue (its work done) and the mount.
test_expect_success 'node-a back after the failover: the address stays on node-c' '
	simulate "$TRASH/lost.xml" "$TRASH/back" --node-up node-a &&
	placed "$TRASH/back" primary-vip Started node-c &&
	placed "$TRASH/back" primary-rescue Stopped - &&
	placed "$TRASH/back" primary-storage Stopped -
'

# The crmsh section of the text names each constraint as the XML does
# (neither pcs nor crmsh is needed to run this).
test_expect_success 'the text and the XML have the same constraints' '
	"$PYTHON3" - "$EXAMPLE" "$SRCDIR/hooks/pacemaker-example.txt" <<-PY
	import re, sys, xml.etree.ElementTree as ET
	x = ET.parse(sys.argv[1]).getroot().find("constraints")
	ids = sorted(c.get("id") for c in x)
	t = open(sys.argv[2]).read()
	crm = t[t.index("crm shell (crmsh"):t.index("What happens")]
	got = sorted(m.group(2) for m in re.finditer(r"^  (location|colocation|order) (\S+)", crm, re.M))
	assert ids == got, (ids, got)
	PY
'

test_done

#!/bin/sh
# Runs inside the VM (busybox sh, Debian's kernel): the ipvlan and VLAN cases this machine's kernel cannot run.
# Prints one line per case, "PASS <case>" or "FAIL <case>: <why>", for conformance/vm.test.ts.
set -u
BIN=/mnt/bin
DATA=/run/cnm-data
IP=/usr/sbin/ip
export CNI_PATH=$BIN

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
# expect NAME COMMAND...: PASS when the command succeeds
expect() {
  name=$1; shift
  if "$@" > /tmp/out 2>&1; then pass "$name"; else fail "$name" "$(head -c 400 /tmp/out | tr '\n' ' ')"; fi
}
# cni PLUGIN COMMAND CONTAINER NETNS CONF
cni() {
  echo "$5" | CNI_COMMAND=$2 CNI_CONTAINERID=$3 CNI_NETNS=/var/run/netns/$4 CNI_IFNAME=eth0 $BIN/$1
}
serve() { $IP netns exec "$1" nc -ll -p "$2" -e /bin/echo "hello-from-$1" > /dev/null 2>&1 & }
# reach FROM ADDR PORT SERVER: a TCP connection from FROM gets SERVER's greeting
reach() { echo | $IP netns exec "$1" timeout 5 nc -w 3 "$2" "$3" 2> /dev/null | grep -q "hello-from-$4"; }
unreachable() { ! reach "$@"; }
only_lo() { for n in "$@"; do [ "$($IP -n "$n" -o link show | wc -l)" = 1 ] || return 1; done; }
no_reservations() { [ -z "$(find $DATA/ipam -type f 2> /dev/null | grep -E '/[0-9.]+$')" ]; }

# The outside host: a namespace behind a veth whose node end, up0, is the master.
$IP netns add out
$IP link add up0 type veth peer name eth0 netns out
$IP addr add 198.18.50.1/24 dev up0
$IP link set up0 up
$IP -n out addr add 198.18.50.2/24 dev eth0
$IP -n out link set eth0 up
$IP -n out link set lo up
$IP -n out route add 10.60.0.0/24 via 198.18.50.1
serve out 9000
sleep 1

L2='{"cniVersion":"1.1.0","name":"l2","type":"cnm-ipvlan","master":"up0","mode":"l2","dataDir":"/run/cnm-data","ipam":{"type":"cnm-host-local","ranges":[[{"subnet":"198.18.50.0/24","rangeStart":"198.18.50.10","gateway":"198.18.50.2"}]]}}'
for p in a b; do $IP netns add $p; $IP -n $p link set lo up; done
expect "ipvlan l2: ADD pod a" cni cnm-ipvlan ADD ca a "$L2"
expect "ipvlan l2: ADD pod b" cni cnm-ipvlan ADD cb b "$L2"
serve b 8080
sleep 1
expect "ipvlan l2: the pod link is an ipvlan in mode l2" sh -c "$IP -n a -d link show eth0 | grep -q 'ipvlan  mode l2'"
expect "ipvlan l2: pods reach each other" reach a 198.18.50.11 8080 b
expect "ipvlan l2: a pod reaches the outside host" reach a 198.18.50.2 9000 out
expect "ipvlan l2: CHECK" cni cnm-ipvlan CHECK ca a "$L2"
expect "ipvlan l2: DEL pod a" cni cnm-ipvlan DEL ca a "$L2"
expect "ipvlan l2: DEL pod b" cni cnm-ipvlan DEL cb b "$L2"
expect "ipvlan l2: DEL again is fine" cni cnm-ipvlan DEL cb b "$L2"
expect "ipvlan l2: DEL leaves no link" only_lo a b

L3='{"cniVersion":"1.1.0","name":"l3","type":"cnm-ipvlan","master":"up0","mode":"l3","dataDir":"/run/cnm-data","ipam":{"type":"cnm-host-local","ranges":[[{"subnet":"10.60.0.0/24"}]]}}'
for p in c d; do $IP netns add $p; $IP -n $p link set lo up; done
expect "ipvlan l3: ADD pod c" cni cnm-ipvlan ADD cc c "$L3"
expect "ipvlan l3: ADD pod d" cni cnm-ipvlan ADD cd d "$L3"
serve d 8080
sleep 1
expect "ipvlan l3: the pod has a default route out of its device" sh -c "$IP -n c route show default | grep -q 'dev eth0'"
expect "ipvlan l3: pods reach each other" reach c 10.60.0.3 8080 d
expect "ipvlan l3: a pod reaches the outside host" reach c 198.18.50.2 9000 out
expect "ipvlan l3: the outside host reaches a pod" reach out 10.60.0.3 8080 d
for p in c d; do cni cnm-ipvlan DEL c$p $p "$L3" > /dev/null; done
expect "ipvlan l3: DEL leaves no link" only_lo c d

# A VLAN parent: master up0.10 does not exist; the first ADD makes it, removing the network removes it.
$IP -n out link add link eth0 name eth0.10 type vlan id 10
$IP -n out addr add 198.18.60.2/24 dev eth0.10
$IP -n out link set eth0.10 up
$IP netns exec out nc -ll -p 9010 -e /bin/echo hello-from-vlan-out > /dev/null 2>&1 &
VLAN='{"cniVersion":"1.1.0","name":"vlan10","type":"cnm-ipvlan","parent":"up0.10","mode":"l2","dataDir":"/run/cnm-data","ipam":{"type":"cnm-host-local","ranges":[[{"subnet":"198.18.60.0/24","rangeStart":"198.18.60.10"}]]}}'
$IP netns add e
expect "vlan: up0.10 does not exist before the first ADD" sh -c "! $IP link show up0.10"
expect "vlan: ADD pod e on parent up0.10" cni cnm-ipvlan ADD ce e "$VLAN"
expect "vlan: up0.10 is an 802.1q link with id 10 on up0" sh -c "$IP -d link show up0.10 | grep -q 'vlan protocol 802.1Q id 10'"
expect "vlan: the pod reaches the outside host over VLAN 10" reach e 198.18.60.2 9010 vlan-out
# A reboot: pod e's namespace and the VLAN parent are gone, the data dir is kept.
$IP netns del e
$IP link del up0.10
$IP netns add g
expect "vlan reboot: a new pod's ADD recreates parent up0.10" cni cnm-ipvlan ADD cg g "$VLAN"
expect "vlan reboot: up0.10 is again VLAN 10 on up0" sh -c "$IP -d link show up0.10 | grep -q 'vlan protocol 802.1Q id 10'"
expect "vlan reboot: the new pod reaches the outside host over VLAN 10" reach g 198.18.60.2 9010 vlan-out
expect "vlan: DEL pod e" cni cnm-ipvlan DEL ce e "$VLAN"
expect "vlan reboot: DEL of the new pod" cni cnm-ipvlan DEL cg g "$VLAN"
expect "vlan: cnm network rm removes the network" $BIN/cnm --data-dir $DATA network rm vlan10
expect "vlan: up0.10 is gone with the network" sh -c "! $IP link show up0.10"

MV='{"cniVersion":"1.1.0","name":"mv20","type":"cnm-macvlan","master":"up0.20","mode":"bridge","dataDir":"/run/cnm-data","ipam":{"type":"cnm-host-local","ranges":[[{"subnet":"198.18.70.0/24","rangeStart":"198.18.70.10"}]]}}'
$IP netns add f
expect "vlan: a macvlan network makes its VLAN parent too" cni cnm-macvlan ADD cf f "$MV"
expect "vlan: macvlan DEL" cni cnm-macvlan DEL cf f "$MV"
expect "vlan: cnm network prune removes it and its parent" sh -c "$BIN/cnm --data-dir $DATA network prune > /dev/null && ! $IP link show up0.20"

$BIN/cnm --data-dir $DATA network prune > /dev/null 2>&1
expect "nothing left: no reservation" no_reservations
expect "nothing left: no endpoint record" sh -c "[ -z \"\$(find $DATA/endpoints -type f 2> /dev/null)\" ]"
echo "DONE"

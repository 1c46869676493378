#!/usr/bin/env bash
# Two pods on a cnm-bridge network reach each other, the operator's view of them, then everything removed.
# Its own store (a temp dir), namespaces, bridge, network name and subnet, none a real install would use; the trap
# removes them even when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/dist/bin"
net="cnmdemo$$"
subnet="172.29.254.0/24"
data="$(mktemp -d /tmp/cnmdemo-XXXX)"
pods=(a b)
conf="{\"cniVersion\":\"1.1.0\",\"name\":\"$net\",\"type\":\"cnm-bridge\",\"bridge\":\"$net\",\"isGateway\":true,\"dataDir\":\"$data\",\"ipam\":{\"type\":\"cnm-host-local\",\"ranges\":[[{\"subnet\":\"$subnet\"}]]}}"

cni() { # cni COMMAND POD: the plugin run as a runtime runs it
  echo "$conf" | CNI_COMMAND="$1" CNI_CONTAINERID="demo-$2" CNI_NETNS="/var/run/netns/$net-$2" CNI_IFNAME=eth0 CNI_PATH="$bin" "$bin/cnm-bridge"
}
cleanup() {
  for p in "${pods[@]}"; do cni DEL "$p" >/dev/null 2>&1 || true; done
  "$bin/cnm" --data-dir "$data" network rm "$net" >/dev/null 2>&1 || true
  for p in "${pods[@]}"; do ip netns delete "$net-$p" 2>/dev/null || true; done
  rm -rf "$data"
}
trap cleanup EXIT

declare -A ip
for p in "${pods[@]}"; do
  ip netns add "$net-$p"
  echo "\$ CNI_COMMAND=ADD cnm-bridge   # pod $p"
  result="$(cni ADD "$p")"
  echo "$result"
  ip[$p]="$(echo "$result" | sed -n 's/.*"address":"\([0-9.]*\)\/.*/\1/p')"
done
echo
echo "\$ ping -c 1 ${ip[b]}   # from pod a"
ip netns exec "$net-a" busybox ping -c 1 -W 2 "${ip[b]}" | sed -n 2p
echo "\$ cnm network ls"
"$bin/cnm" --data-dir "$data" network ls
echo "\$ cnm endpoint ls"
"$bin/cnm" --data-dir "$data" endpoint ls
echo
for p in "${pods[@]}"; do cni DEL "$p"; done
"$bin/cnm" --data-dir "$data" network rm "$net" >/dev/null
echo "pods detached, network $net removed"

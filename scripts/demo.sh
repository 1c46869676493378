#!/usr/bin/env bash
# A pod namespace attached with cnm-null, its result printed, then detached: the whole CNI round trip.
set -euo pipefail
cd "$(dirname "$0")/.."
ns="cnmdemo-$$"
data="$(mktemp -d /tmp/cnmdemo-XXXX)"
trap 'ip netns delete "$ns" 2>/dev/null || true; rm -rf "$data"' EXIT
ip netns add "$ns"
conf="{\"cniVersion\":\"1.1.0\",\"name\":\"demo\",\"type\":\"cnm-null\",\"dataDir\":\"$data\"}"
export CNI_CONTAINERID=demo CNI_NETNS="/var/run/netns/$ns" CNI_IFNAME=eth0 CNI_PATH="$PWD/dist/bin"
echo "\$ CNI_COMMAND=ADD dist/bin/cnm-null  (pod namespace $ns)"
echo "$conf" | CNI_COMMAND=ADD dist/bin/cnm-null
echo
echo "\$ ip -n $ns -brief addr show lo"
ip -n "$ns" -brief addr show lo
echo "\$ CNI_COMMAND=DEL dist/bin/cnm-null"
echo "$conf" | CNI_COMMAND=DEL dist/bin/cnm-null && echo "detached (exit 0)"

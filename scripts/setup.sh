#!/usr/bin/env bash
# Installs what cnm-cni needs on a Debian 12 machine (as root), builds dist/bin (Bun) and dist/sea (pkg SEA),
# then runs the short demo. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# qemu-system-x86 and busybox-static: the VM suite boots Debian's own kernel (ipvlan, 802.1q) under emulation;
# containerd, runc, podman: the runtime suites; gcc + libc6-dev: the static pause binary of the sandbox image;
# etcd-server: the overlay's cluster store; iperf3: throughput (bandwidth, overlay); dnsutils + dnsmasq-base: service
# discovery's clients and its benchmark peer; docker.io: dockerd as a client of `cnm plugin serve`.
PACKAGES=(iproute2 nftables iptables util-linux procps time containernetworking-plugins qemu-system-x86 busybox-static
  containerd runc podman gcc libc6-dev etcd-server iperf3 dnsutils dnsmasq-base docker.io)
missing=()
for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
# The package lists are needed anyway: the VM suite downloads the kernel package linux-image-amd64 points at.
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
npm ci --no-audit --no-fund
npm run --silent build
npm run --silent build:sea
bash scripts/demo.sh

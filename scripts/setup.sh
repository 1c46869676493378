#!/usr/bin/env bash
# Installs what cnm-cni needs on a Debian 12 machine (as root), builds dist/bin (Bun) and dist/sea (pkg SEA),
# then runs the short demo. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(iproute2 nftables iptables util-linux procps time containernetworking-plugins)
missing=()
for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
npm ci --no-audit --no-fund
npm run --silent build
npm run --silent build:sea
bash scripts/demo.sh

#!/bin/sh
# Runs `ctr run --cni` in the private mount namespace `unshare -m` gives it: ctr reads only /opt/cni/bin and
# /etc/cni/net.d, so the test's dirs are mounted over them here, where the machine's own are never touched.
# usage: run-with-cni.sh BIN_DIR CONF_DIR CTR_ARGS...
set -eu
bin_dir=$1
conf_dir=$2
shift 2
mount --make-rprivate /
mount -t tmpfs cnmt-opt /opt
mkdir -p /opt/cni/bin
mount --bind "$bin_dir" /opt/cni/bin
mount --bind "$conf_dir" /etc/cni/net.d
exec ctr "$@"

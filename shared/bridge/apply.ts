// Applies an endpoint's plan to the kernel: through rtnetlink in-process where the runtime can (Bun), else
// through one `ip -batch` per namespace. Both do the same steps; the conformance suites run the default
// format, which takes the netlink path, and the SEA format, which takes iproute2's.
import { lap } from '../cni/timing.ts';
import { podBatch, podRoutes, type PodSide } from '../cnm/pod-plan.ts';
import { ipBatch } from '../kernel/iproute.ts';
import { linkIndex } from '../kernel/links.ts';
import { NetlinkBatch } from '../kernel/netlink/message.ts';
import { netlinkAvailable, NetlinkSocket } from '../kernel/netlink/socket.ts';
import { familyOf } from '../ipam/ip.ts';
import { hostBatch, type HostSide } from './plan.ts';

/** Host side then pod side; `extraHostLines` (removing a foreign bridge address) forces iproute2. */
export function applyEndpoint(host: HostSide, pod: PodSide, extraHostLines: string[]): void {
  if (extraHostLines.length === 0 && !host.vlan && netlinkAvailable()) {
    applyWithNetlink(host, pod);
    return;
  }
  ipBatch([...extraHostLines, ...hostBatch(host)]);
  lap('host-kernel');
  ipBatch(podBatch(pod), host.netns);
  lap('pod-kernel');
}

function applyWithNetlink(host: HostSide, pod: PodSide): void {
  const node = NetlinkSocket.open();
  const inPod = NetlinkSocket.open(host.netns);
  try {
    // One request makes the pair, puts the host end on the bridge and brings it up; the same batch (one send,
    // one read of the answers) gives the bridge its gateway addresses and brings it up.
    const bridgeIndex = linkIndex(host.bridge);
    const hostSide = new NetlinkBatch().addVeth(host.hostVeth, host.ifname, inPod.netnsFd, { mtu: host.mtu, peerMac: host.mac, masterIndex: bridgeIndex, up: true });
    for (const a of host.gatewayAddrs) hostSide.addAddress(bridgeIndex, a, { replace: true });
    node.run(hostSide.setLink(bridgeIndex, host.bridge, { up: true }));
    const podIndex = linkIndex(host.hostVeth, 'iflink');
    if (host.hairpin || host.isolated) {
      ipBatch([`link set dev ${host.hostVeth} type bridge_slave hairpin ${host.hairpin ? 'on' : 'off'} isolated ${host.isolated ? 'on' : 'off'}`]);
    }
    lap('host-kernel');
    const podSide = new NetlinkBatch();
    for (const ip of pod.ips) podSide.addAddress(podIndex, ip.address, { nodad: !pod.enabledad });
    podSide.setLink(podIndex, pod.ifname, { up: true });
    for (const r of podRoutes(pod)) podSide.addRoute(podIndex, r.dst, r.gw ?? pod.gateways[familyOf(r.dst)]);
    inPod.run(podSide);
    lap('pod-kernel');
  } finally {
    node.close();
    inPod.close();
  }
}

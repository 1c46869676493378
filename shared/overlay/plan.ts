// What the kernel of a node should hold for its overlay networks, as data: iproute2/bridge batch lines and nft
// scripts. Pure, so unit-tested without root; the agent and the driver apply them.
import { nftString } from '../kernel/nft.ts';
import { hairpinMasquerade, hostPortChains, recreateTable, subnetSets, tableName } from '../bridge/plan.ts';
import { shortHash } from '../cnm/names.ts';
import { DEFAULT_DATA_DIR } from '../cnm/store.ts';
import { subnetAddresses, type NetworkSpec, type SubnetLease } from './cluster.ts';
import type { OverlayOptions } from './options.ts';

/** The three kernel entries one remote node costs on a network's VXLAN device. */
export interface PeerEntry {
  subnet: string;
  /** The remote VTEP's address: its subnet's own address. */
  vtep: string;
  underlay: string;
  mac: string;
}

export function peerEntry(lease: SubnetLease): PeerEntry {
  return { subnet: lease.subnet, vtep: subnetAddresses(lease.subnet).vtep, underlay: lease.underlay, mac: lease.vtepMac };
}

export interface VxlanDevice {
  name: string;
  vni: number;
  port: number;
  underlay: string;
  mac: string;
  mtu: number;
  /** The node's own subnet: the device carries its address as a /32. */
  subnet: string;
}

/** Creates the device (learning off, the outer source pinned to the underlay address) and brings it up. */
export function vxlanCreateBatch(d: VxlanDevice): string[] {
  return [
    `link add ${d.name} address ${d.mac} mtu ${d.mtu} type vxlan id ${d.vni} local ${d.underlay} dstport ${d.port} nolearning`,
    `addr replace ${subnetAddresses(d.subnet).vtep}/32 dev ${d.name}`,
    `link set dev ${d.name} up`,
  ];
}

/** `ip -batch` lines for a peer: its neighbour (VTEP address → MAC) and the onlink route to its subnet. */
export function peerAddLines(dev: string, p: PeerEntry): { ip: string[]; bridge: string[] } {
  return {
    ip: [`neigh replace ${p.vtep} lladdr ${p.mac} dev ${dev} nud permanent`, `route replace ${p.subnet} via ${p.vtep} dev ${dev} onlink`],
    bridge: [`fdb replace ${p.mac} dev ${dev} dst ${p.underlay} self permanent`],
  };
}

/** The entries a device holds now, as read back from the kernel. */
export interface KernelEntries {
  neigh: Array<{ dst: string; mac: string }>;
  fdb: Array<{ mac: string; dst: string }>;
  routes: Array<{ dst: string; via: string }>;
}

/**
 * What to remove and what to add so the device holds exactly the wanted peers: removals first, so a peer whose
 * underlay address or MAC changed loses its old entries before it gets new ones. Kernel entries that belong to no
 * wanted peer are stale (a node that left while the agent was down) and are removed too.
 */
export function peerDiff(dev: string, have: KernelEntries, want: PeerEntry[]): { ip: string[]; bridge: string[] } {
  const route = (dst: string, via: string) => `${dst}|${via}`;
  const neigh = (dst: string, mac: string) => `${dst}|${mac}`;
  const fdb = (mac: string, dst: string) => `${mac}|${dst}`;
  const wantRoute = new Set(want.map((p) => route(p.subnet, p.vtep)));
  const wantNeigh = new Set(want.map((p) => neigh(p.vtep, p.mac)));
  const wantFdb = new Set(want.map((p) => fdb(p.mac, p.underlay)));
  const haveRoute = new Set(have.routes.map((r) => route(r.dst, r.via)));
  const haveNeigh = new Set(have.neigh.map((n) => neigh(n.dst, n.mac)));
  const haveFdb = new Set(have.fdb.map((f) => fdb(f.mac, f.dst)));
  const ip = [
    ...have.routes.filter((r) => !wantRoute.has(route(r.dst, r.via))).map((r) => `route del ${r.dst} dev ${dev}`),
    ...have.neigh.filter((n) => !wantNeigh.has(neigh(n.dst, n.mac))).map((n) => `neigh del ${n.dst} dev ${dev}`),
  ];
  const bridge = have.fdb.filter((f) => !wantFdb.has(fdb(f.mac, f.dst))).map((f) => `fdb del ${f.mac} dev ${dev} dst ${f.dst} self`);
  for (const p of want) {
    const add = peerAddLines(dev, p);
    if (!haveNeigh.has(neigh(p.vtep, p.mac))) ip.push(add.ip[0]!);
    if (!haveRoute.has(route(p.subnet, p.vtep))) ip.push(add.ip[1]!);
    if (!haveFdb.has(fdb(p.mac, p.underlay))) bridge.push(add.bridge[0]!);
  }
  return { ip, bridge };
}

/** The node's own overlay table: VXLAN only from cluster members, and no traffic between two overlay networks. */
export function nodeTable(dataDir: string): string {
  return dataDir === DEFAULT_DATA_DIR ? 'cnm_overlay' : `cnm_overlay_${shortHash(dataDir).slice(0, 8)}`;
}

export function nodeRuleset(table: string, members: string[], networks: NetworkSpec[]): string {
  const ports = [...new Set(networks.map((n) => n.port))].sort((a, b) => a - b);
  const lines = [...recreateTable('inet', table)];
  const uniq = [...new Set(members)].sort();
  lines.push(`  set members { type ipv4_addr;${uniq.length ? ` elements = { ${uniq.join(', ')} };` : ''} }`);
  lines.push('  chain input { type filter hook input priority filter - 5; policy accept;');
  if (ports.length) lines.push(`    udp dport { ${ports.join(', ')} } ip saddr != @members drop`);
  lines.push('  }');
  lines.push('  chain forward { type filter hook forward priority filter - 5; policy accept;');
  for (const n of [...networks].sort((a, b) => a.name.localeCompare(b.name))) {
    const others = networks.filter((o) => o.name !== n.name).map((o) => o.network);
    if (others.length) lines.push(`    ip saddr ${n.network} ip daddr { ${[...new Set(others)].join(', ')} } drop`);
  }
  lines.push('  }', '}');
  return lines.join('\n') + '\n';
}

/**
 * A network's own table on a node: the bridge driver's hostPort pieces, masquerade that leaves traffic to the rest
 * of the cluster alone, icc and internal applied to routed traffic as well (pods of other nodes are a route away).
 */
export function overlayNetworkRuleset(network: string, o: OverlayOptions, nodeSubnet: string): string {
  const t = tableName(network);
  const br = nftString(o.bridge);
  const cidr = o.overlay.network;
  const lines = [...recreateTable('inet', t), ...subnetSets([nodeSubnet]), ...hostPortChains()];
  lines.push('  chain postrouting { type nat hook postrouting priority srcnat; policy accept;', ...hairpinMasquerade(br));
  if (o.ipMasq) lines.push(`    ip saddr ${cidr} ip daddr != ${cidr} ip daddr != 224.0.0.0/4 masquerade`);
  lines.push('  }');
  const forward: string[] = [];
  if (!o.icc) forward.push(`    iifname ${br} ip saddr ${cidr} ip daddr ${cidr} drop`);
  if (o.internal) forward.push(`    iifname ${br} ip daddr != ${cidr} drop`, `    oifname ${br} ip saddr != ${cidr} drop`);
  if (forward.length) lines.push('  chain forward { type filter hook forward priority filter; policy accept;', ...forward, '  }');
  lines.push('}');
  return lines.join('\n') + '\n';
}

// The agent's kernel work on its node: the VXLAN device, the peer entries, the node table.
import { readFileSync } from 'node:fs';
import { ipBatch, ipJson } from '../../kernel/iproute.ts';
import { linkExists, readSysctl } from '../../kernel/links.ts';
import { nftApply } from '../../kernel/nft.ts';
import { CommandError, run, which } from '../../kernel/spawn.ts';
import { peerDiff, vxlanCreateBatch, type KernelEntries, type PeerEntry, type VxlanDevice } from '../plan.ts';

/** The node's address towards a host (the etcd server), and the link it leaves by. */
export function underlayTowards(host: string): { address: string; dev: string } {
  const r = ipJson<Array<{ prefsrc?: string; dev?: string }>>(['route', 'get', host]);
  const first = r[0];
  if (!first?.prefsrc || !first.dev) throw new Error(`no route from this node to ${host}: cannot tell the underlay address (pass --underlay-address)`);
  return { address: first.prefsrc, dev: first.dev };
}

/** The link that carries an address. */
export function linkOfAddress(address: string): string {
  const links = ipJson<Array<{ ifname: string; addr_info?: Array<{ local: string }> }>>(['addr', 'show']);
  const l = links.find((x) => (x.addr_info ?? []).some((a) => a.local === address));
  if (!l) throw new Error(`no link of this node has the underlay address ${address}`);
  return l.ifname;
}

export function linkMtu(dev: string): number {
  return Number(readFileSync(`/sys/class/net/${dev}/mtu`, 'utf8'));
}

interface LinkDetail {
  address?: string;
  mtu?: number;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; port?: number; learning?: boolean } };
}

/** Makes the device as wanted; an existing one that differs (a new underlay address, say) is recreated. */
export function ensureVxlan(d: VxlanDevice, offloadOff: boolean): 'created' | 'kept' {
  if (linkExists(d.name)) {
    const [cur] = ipJson<LinkDetail[]>(['-d', 'link', 'show', 'dev', d.name]);
    const info = cur?.linkinfo?.info_data;
    const same = cur?.linkinfo?.info_kind === 'vxlan' && info?.id === d.vni && info.local === d.underlay && info.port === d.port && cur.address === d.mac;
    if (same) {
      if (cur!.mtu !== d.mtu) ipBatch([`link set dev ${d.name} mtu ${d.mtu}`]);
      ipBatch(vxlanCreateBatch(d).slice(1));
      return 'kept';
    }
    ipBatch([`link del ${d.name}`]);
  }
  ipBatch(vxlanCreateBatch(d));
  if (offloadOff) txChecksumOff(d.name);
  return 'created';
}

/**
 * Kernels before 5.7 compute a wrong checksum for VXLAN-encapsulated packets the NIC was to checksum (flannel
 * #1279): offload off on the device. Needs ethtool.
 */
export function txChecksumOff(dev: string): void {
  const r = run(which('ethtool'), ['-K', dev, 'tx', 'off']);
  if (r.status !== 0) process.stderr.write(`cnm agent: could not turn tx checksum offload off on ${dev} (${r.stderr.trim()}); install ethtool\n`);
}

/** True on kernels older than 5.7. */
export function kernelNeedsOffloadOff(release = readFileSync('/proc/sys/kernel/osrelease', 'utf8')): boolean {
  const [maj, min] = release.split('.').map((x) => Number.parseInt(x, 10));
  return maj! < 5 || (maj === 5 && min! < 7);
}

export function deleteLink(dev: string): void {
  if (linkExists(dev)) run('ip', ['link', 'del', dev]);
}

/** The permanent neighbours, FDB entries and routes a VXLAN device holds now. */
export function readEntries(dev: string): KernelEntries {
  const neigh = ipJson<Array<{ dst: string; lladdr?: string; state?: string[] }>>(['neigh', 'show', 'dev', dev]);
  const routes = ipJson<Array<{ dst: string; gateway?: string }>>(['route', 'show', 'dev', dev]);
  const fdbOut = run('bridge', ['-j', 'fdb', 'show', 'dev', dev]);
  const fdb = fdbOut.status === 0 && fdbOut.stdout.trim() ? (JSON.parse(fdbOut.stdout) as Array<{ mac: string; dst?: string }>) : [];
  return {
    neigh: neigh.filter((n) => n.lladdr && (n.state ?? []).includes('PERMANENT')).map((n) => ({ dst: n.dst, mac: n.lladdr! })),
    fdb: fdb.filter((f) => f.dst && f.mac !== '00:00:00:00:00:00').map((f) => ({ mac: f.mac, dst: f.dst! })),
    routes: routes.filter((r) => r.gateway).map((r) => ({ dst: r.dst, via: r.gateway! })),
  };
}

/** Brings the device's peer entries to exactly `want`; returns how many lines it ran. */
export function syncPeers(dev: string, want: PeerEntry[]): number {
  const diff = peerDiff(dev, readEntries(dev), want);
  forceBatch('ip', diff.ip);
  forceBatch('bridge', diff.bridge);
  return diff.ip.length + diff.bridge.length;
}

/** A batch that goes on past a failed line (a delete of something already gone), then reports the failures. */
function forceBatch(tool: 'ip' | 'bridge', lines: string[]): void {
  if (lines.length === 0) return;
  const r = run(tool, ['-force', '-batch', '-'], lines.join('\n') + '\n');
  if (r.status !== 0) {
    const real = r.stderr.split('\n').filter((l) => l.trim() && !/No such|Cannot find|does not exist|not found/i.test(l));
    if (real.length) throw new CommandError([tool, '-force', '-batch', `<<${lines.length} lines>>`], { ...r, stderr: real.join('\n') });
  }
}

export function applyNft(script: string): void {
  nftApply(script);
}

export function forwardingOn(): void {
  if (readSysctl('net.ipv4.ip_forward') !== '1') run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
}

// The cluster state in etcd: where each record lives under the prefix and what it holds. Pure.
//
//   P/networks/NET                 NetworkSpec       written once, by the first node whose pods join NET
//   P/nodes/NODE                   NodeRecord        bound to NODE's etcd lease
//   P/subnets/NET/NODE             SubnetLease       bound to NODE's etcd lease: NODE's share of NET
//   P/claims/NET/SUBNET            NODE              bound to the same lease: what makes a subnet taken
//   P/endpoints/NET/NODE/CID:IF    EndpointSummary   bound to the same lease, published from the node's store
import { formatCidr, formatIp, parseCidr, type Cidr } from '../ipam/ip.ts';

export const DEFAULT_PREFIX = '/cnm-cni';

/** A network's cluster-wide definition: every node's config must agree with it. */
export interface NetworkSpec {
  name: string;
  vni: number;
  /** The cluster CIDR, e.g. 10.240.0.0/16. */
  network: string;
  subnetLen: number;
  port: number;
  ipMasq: boolean;
  icc: boolean;
  internal: boolean;
}

export interface NodeRecord {
  name: string;
  underlay: string;
}

export interface SubnetLease {
  node: string;
  subnet: string;
  underlay: string;
  vtepMac: string;
}

export interface EndpointSummary {
  node: string;
  containerId: string;
  ifname: string;
  ips: string[];
  mac?: string;
  /** Service discovery: what the endpoint answers to on networks that have it (absent: no names). */
  names?: string[];
  aliases?: string[];
}

const clean = (p: string) => p.replace(/\/+$/, '');

export const keys = {
  networks: (p: string) => `${clean(p)}/networks/`,
  network: (p: string, net: string) => `${clean(p)}/networks/${net}`,
  nodes: (p: string) => `${clean(p)}/nodes/`,
  node: (p: string, node: string) => `${clean(p)}/nodes/${node}`,
  subnets: (p: string, net?: string) => `${clean(p)}/subnets/${net ? `${net}/` : ''}`,
  subnet: (p: string, net: string, node: string) => `${clean(p)}/subnets/${net}/${node}`,
  claim: (p: string, net: string, subnet: string) => `${clean(p)}/claims/${net}/${subnet.replace('/', '_')}`,
  endpoints: (p: string, net?: string, node?: string) => `${clean(p)}/endpoints/${net ? `${net}/` : ''}${net && node ? `${node}/` : ''}`,
  endpoint: (p: string, net: string, node: string, id: string) => `${clean(p)}/endpoints/${net}/${node}/${id}`,
  /** Everything under the prefix. */
  all: (p: string) => `${clean(p)}/`,
};

/** What a key under the prefix is, parsed back. */
export type ParsedKey =
  | { kind: 'network'; net: string }
  | { kind: 'node'; node: string }
  | { kind: 'subnet'; net: string; node: string }
  | { kind: 'claim'; net: string }
  | { kind: 'endpoint'; net: string; node: string; id: string };

export function parseKey(prefix: string, key: string): ParsedKey | undefined {
  const base = keys.all(prefix);
  if (!key.startsWith(base)) return undefined;
  const parts = key.slice(base.length).split('/');
  const [kind, a, b, c] = parts;
  if (kind === 'networks' && parts.length === 2 && a) return { kind: 'network', net: a };
  if (kind === 'nodes' && parts.length === 2 && a) return { kind: 'node', node: a };
  if (kind === 'subnets' && parts.length === 3 && a && b) return { kind: 'subnet', net: a, node: b };
  if (kind === 'claims' && parts.length === 3 && a) return { kind: 'claim', net: a };
  if (kind === 'endpoints' && parts.length === 4 && a && b && c) return { kind: 'endpoint', net: a, node: b, id: c };
  return undefined;
}

/** The fields two nodes' configs of one network must agree on, named when they differ. */
export function specDifferences(a: NetworkSpec, b: NetworkSpec): string[] {
  return (['vni', 'network', 'subnetLen', 'port', 'ipMasq', 'icc', 'internal'] as const).filter((k) => a[k] !== b[k]).map((k) => `${k} ${JSON.stringify(b[k])} (the cluster has ${JSON.stringify(a[k])})`);
}

/**
 * The node subnets to try, in order: the one the node held before (so a restarted node gets its own back), then
 * the rest in address order, skipping those taken. Subnet 0 is skipped so that no node's gateway is the cluster
 * network's own address.
 */
export function subnetCandidates(spec: NetworkSpec, taken: Set<string>, previous?: string, limit = 64): string[] {
  const cidr = parseCidr(spec.network)!;
  const out: string[] = [];
  if (previous && !taken.has(previous) && insideCidr(cidr, previous, spec.subnetLen)) out.push(previous);
  const size = 1n << BigInt((cidr.family === 4 ? 32 : 128) - spec.subnetLen);
  const count = 1n << BigInt(spec.subnetLen - cidr.prefix);
  for (let i = 1n; i < count && out.length < limit; i++) {
    const s = formatCidr({ ...cidr, network: cidr.network + i * size, prefix: spec.subnetLen, last: cidr.network + (i + 1n) * size - 1n });
    if (!taken.has(s) && s !== previous) out.push(s);
  }
  return out;
}

function insideCidr(cidr: Cidr, subnet: string, len: number): boolean {
  const s = parseCidr(subnet);
  return !!s && s.family === cidr.family && s.prefix === len && s.network >= cidr.network && s.network <= cidr.last;
}

/** Whether two CIDRs share an address (two overlay networks must not: their routes would collide on every node). */
export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  return !!x && !!y && x.family === y.family && x.network <= y.last && y.network <= x.last;
}

/** A node's addresses in its subnet: the VTEP (the subnet's own address, as a /32) and the pods' gateway (.1). */
export function subnetAddresses(subnet: string): { vtep: string; gateway: string; prefix: number } {
  const c = parseCidr(subnet)!;
  return { vtep: formatIp(c.family, c.network), gateway: formatIp(c.family, c.network + 1n), prefix: c.prefix };
}

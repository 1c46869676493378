// The names the DNS server answers, built from store records: pure, so unit-tested without a server.
import type { EndpointRecord, NetworkRecord } from '../cnm/records.ts';
import { discoveryOf, type Discovery, type Upstream } from '../discovery/options.ts';
import type { RemoteEndpoint } from '../discovery/remote.ts';
import { vipsOf } from '../discovery/vip-state.ts';

export interface Addresses {
  v4: string[];
  v6: string[];
}

/** One network with service discovery, as the server answers for it. */
export interface ZoneNetwork {
  /** dataDir + network name: unique across the stores a server serves. */
  key: string;
  name: string;
  domain: string;
  ttl: number;
  upstreams: Upstream[];
  gateways: string[];
  /** Name (lower case, no domain) to addresses: endpoints' names, aliases (their VIP when the network has VIPs). */
  names: Map<string, Addresses>;
  /** Address to the name PTR answers with (fully qualified, no trailing dot). */
  ptr: Map<string, string>;
}

export interface Zone {
  networks: ZoneNetwork[];
  /** Gateway address to the networks it serves. */
  byGateway: Map<string, ZoneNetwork[]>;
  /** `${network key}|${source address}` to the keys of every network that pod (its container) is on. */
  podNetworks: Map<string, string[]>;
}

export interface StoreRecords {
  dataDir: string;
  networks: NetworkRecord[];
  endpoints: EndpointRecord[];
  /** Network name to its endpoints on other nodes (overlay networks): their names answer, they ask elsewhere. */
  remote?: Map<string, RemoteEndpoint[]>;
}

const addr = (ip: string) => ip.split('/')[0]!;
const isV6 = (ip: string) => ip.includes(':');

function put(names: Map<string, Addresses>, name: string, ips: string[]): void {
  let entry = names.get(name);
  if (!entry) names.set(name, (entry = { v4: [], v6: [] }));
  for (const ip of ips) {
    const list = isV6(ip) ? entry.v6 : entry.v4;
    if (!list.includes(ip)) list.push(ip);
  }
}

type Named = Pick<EndpointRecord, 'names' | 'aliases'> & { ips: Array<{ address: string; gateway?: string }> };

function zoneNetwork(dataDir: string, net: NetworkRecord, d: Discovery, endpoints: Named[]): ZoneNetwork {
  const zn: ZoneNetwork = { key: `${dataDir}|${net.name}`, name: net.name, domain: d.domain, ttl: d.ttl, upstreams: d.upstreams, gateways: [], names: new Map(), ptr: new Map() };
  const gateways = new Set(net.subnets.map((s) => s.gateway).filter((g): g is string => !!g));
  const vips = d.vip ? vipsOf(dataDir, net.name) : {};
  for (const ep of endpoints) {
    for (const ip of ep.ips) if (ip.gateway) gateways.add(ip.gateway);
    const ips = ep.ips.map((i) => addr(i.address));
    for (const name of ep.names ?? []) put(zn.names, name, ips);
    for (const alias of ep.aliases ?? []) put(zn.names, alias, vips[alias] ?? ips);
    const first = ep.names?.[0];
    if (first) for (const ip of ips) zn.ptr.set(ip, `${first}.${d.domain}`);
  }
  for (const [alias, ips] of Object.entries(vips)) for (const ip of ips) zn.ptr.set(ip, `${alias}.${d.domain}`);
  zn.gateways = [...gateways];
  return zn;
}

/** The zone of every network whose service discovery names this run dir's server. */
export function buildZone(stores: StoreRecords[], runDir: string): Zone {
  const zone: Zone = { networks: [], byGateway: new Map(), podNetworks: new Map() };
  for (const store of stores) {
    const containers = new Map<string, string[]>();
    const sources: Array<[string, string]> = [];
    for (const net of store.networks) {
      const d = discoveryOf(net.options);
      if (!d || d.runDir !== runDir) continue;
      const endpoints = store.endpoints.filter((e) => e.network === net.name && e.state === 'ready');
      // A remote endpoint's gateway is its own node's: only the addresses count here.
      const remote = (store.remote?.get(net.name) ?? []).map((r): Named => ({ names: r.names, aliases: r.aliases, ips: r.ips.map((address) => ({ address })) }));
      const zn = zoneNetwork(store.dataDir, net, d, [...endpoints, ...remote]);
      zone.networks.push(zn);
      for (const gw of zn.gateways) zone.byGateway.set(gw, [...(zone.byGateway.get(gw) ?? []), zn]);
      for (const ep of endpoints) {
        containers.set(ep.containerId, [...new Set([...(containers.get(ep.containerId) ?? []), zn.key])]);
        for (const ip of ep.ips) sources.push([`${zn.key}|${addr(ip.address)}`, ep.containerId]);
      }
    }
    for (const [source, container] of sources) zone.podNetworks.set(source, containers.get(container)!);
  }
  return zone;
}

/**
 * The networks whose names a query may see: those of the pod that sent it (found by its address on the
 * network whose gateway it asked), else only that network's own.
 */
export function scopeOf(zone: Zone, gateway: string, source: string): ZoneNetwork[] {
  const asked = zone.byGateway.get(gateway) ?? [];
  const keys = new Set<string>();
  for (const net of asked) {
    const pods = zone.podNetworks.get(`${net.key}|${source}`);
    for (const k of pods ?? [net.key]) keys.add(k);
  }
  return zone.networks.filter((n) => keys.has(n.key));
}

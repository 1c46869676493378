import { invalidConfig } from '../cni/errors.ts';
import { optBool, optInt, optString, optStringArray, type Json } from '../cni/fields.ts';
import { formatCidr, parseCidr } from '../ipam/ip.ts';
import type { BridgeOptions } from '../bridge/options.ts';
import { DEFAULT_PREFIX, type NetworkSpec } from './cluster.ts';
import { bridgeName } from './local.ts';

/** Where the cluster store is, as a config or the agent's flags name it. */
export interface EtcdConf {
  endpoints: string[];
  prefix: string;
  ca?: string;
  cert?: string;
  key?: string;
}

/** A cnm-overlay config's keys, validated: the cluster-wide spec, the store, and the node-local knobs. */
export interface OverlayConf {
  spec: NetworkSpec;
  etcd: EtcdConf;
  mtu: number | null;
  hairpinMode: boolean;
}

export function parseEtcdEndpoints(list: string[], field: string): string[] {
  if (list.length === 0) throw invalidConfig(`${field} is empty`, 'list the etcd client URLs, e.g. ["http://10.0.0.10:2379"]');
  for (const u of list) {
    let url: URL | undefined;
    try {
      url = new URL(u);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw invalidConfig(`${field} entry ${JSON.stringify(u)} is not an http:// or https:// URL`);
  }
  return list;
}

export function parseOverlayConf(name: string, raw: Json): OverlayConf {
  const endpoints = optStringArray(raw, 'etcdEndpoints');
  if (!endpoints) throw invalidConfig('cnm-overlay needs "etcdEndpoints"', 'list the etcd client URLs, e.g. "etcdEndpoints": ["http://10.0.0.10:2379"]');
  const network = optString(raw, 'network');
  if (!network) throw invalidConfig('cnm-overlay needs "network", the cluster CIDR every node takes a subnet of', 'e.g. "network": "10.240.0.0/16"');
  const cidr = parseCidr(network);
  if (!cidr || cidr.family !== 4) throw invalidConfig(`network ${JSON.stringify(network)} is not an IPv4 CIDR`, 'e.g. "network": "10.240.0.0/16"');
  const subnetLen = optInt(raw, 'subnetLen', 1, 30) ?? 24;
  if (subnetLen <= cidr.prefix) throw invalidConfig(`subnetLen ${subnetLen} must be longer than the network's /${cidr.prefix}`, 'each node takes one subnetLen-sized share of network');
  if (raw.ipam !== undefined) throw invalidConfig('cnm-overlay takes no "ipam" section: pods get addresses from the subnet their node leases', 'remove ipam from the config');
  const internal = optBool(raw, 'internal') ?? false;
  const ipMasq = optBool(raw, 'ipMasq') ?? false;
  if (internal && ipMasq) throw invalidConfig('internal and ipMasq contradict each other: an internal network has no way out to masquerade', 'drop one of them');
  const prefix = optString(raw, 'etcdPrefix') ?? DEFAULT_PREFIX;
  if (!prefix.startsWith('/')) throw invalidConfig(`etcdPrefix ${JSON.stringify(prefix)} must start with "/"`);
  const etcd: EtcdConf = { endpoints: parseEtcdEndpoints(endpoints, 'etcdEndpoints'), prefix };
  const ca = optString(raw, 'etcdCA');
  const cert = optString(raw, 'etcdCert');
  const key = optString(raw, 'etcdKey');
  if (ca) etcd.ca = ca;
  if (cert) etcd.cert = cert;
  if (key) etcd.key = key;
  return {
    spec: {
      name,
      vni: optInt(raw, 'vni', 1, 16777215) ?? 1,
      network: formatCidr(cidr),
      subnetLen,
      port: optInt(raw, 'port', 1, 65535) ?? 4789,
      ipMasq,
      icc: optBool(raw, 'icc') ?? true,
      internal,
    },
    etcd,
    mtu: optInt(raw, 'mtu', 68, 65535) ?? null,
    hairpinMode: optBool(raw, 'hairpinMode') ?? false,
  };
}

/** What the network record keeps: the bridge driver's options (its endpoint code serves overlay pods) plus the spec. */
export interface OverlayOptions extends BridgeOptions {
  overlay: NetworkSpec;
  clusterEtcd: string[];
  etcdPrefix: string;
}

export function overlayOptions(c: OverlayConf, mtu: number): OverlayOptions {
  return {
    bridge: bridgeName(c.spec.vni),
    isGateway: true,
    isDefaultGateway: true,
    forceAddress: false,
    ipMasq: c.spec.ipMasq,
    mtu,
    hairpinMode: c.hairpinMode,
    promiscMode: false,
    macspoofchk: false,
    enabledad: false,
    vlan: null,
    icc: c.spec.icc,
    internal: c.spec.internal,
    overlay: c.spec,
    clusterEtcd: c.etcd.endpoints,
    etcdPrefix: c.etcd.prefix,
  };
}

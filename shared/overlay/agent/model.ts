// The agent's picture of the cluster, built from a listing and kept current by watch events. Pure.
import type { WatchEvent } from '../../etcd/client.ts';
import type { Kv } from '../../etcd/wire.ts';
import type { RemoteEndpoint } from '../../discovery/remote.ts';
import { parseKey, type EndpointSummary, type NetworkSpec, type NodeRecord, type SubnetLease } from '../cluster.ts';

export class ClusterModel {
  readonly networks = new Map<string, NetworkSpec>();
  readonly nodes = new Map<string, NodeRecord>();
  /** network → node → lease */
  readonly subnets = new Map<string, Map<string, SubnetLease>>();
  /** network → "NODE/CID:IF" → endpoint: only their names matter here, so changes to them are not data-plane changes. */
  readonly endpoints = new Map<string, Map<string, EndpointSummary>>();

  constructor(private readonly prefix: string) {}

  /** Replaces everything with a listing. */
  load(kvs: Kv[]): void {
    this.networks.clear();
    this.nodes.clear();
    this.subnets.clear();
    this.endpoints.clear();
    for (const kv of kvs) this.put(kv);
  }

  /** Applies watch events; returns whether anything the data plane depends on changed. */
  apply(events: WatchEvent[]): boolean {
    let changed = false;
    for (const e of events) changed = (e.type === 'put' ? this.put(e.kv) : this.remove(e.kv.key)) || changed;
    return changed;
  }

  private put(kv: Kv): boolean {
    const k = parseKey(this.prefix, kv.key);
    if (!k) return false;
    let value: unknown;
    try {
      value = JSON.parse(kv.value);
    } catch {
      return false;
    }
    if (k.kind === 'network') this.networks.set(k.net, value as NetworkSpec);
    else if (k.kind === 'node') this.nodes.set(k.node, value as NodeRecord);
    else if (k.kind === 'subnet') this.leasesOf(k.net).set(k.node, value as SubnetLease);
    else if (k.kind === 'endpoint') this.endpointsOf(k.net).set(`${k.node}/${k.id}`, value as EndpointSummary);
    else return false;
    return k.kind !== 'endpoint';
  }

  private remove(key: string): boolean {
    const k = parseKey(this.prefix, key);
    if (!k) return false;
    if (k.kind === 'network') return this.networks.delete(k.net);
    if (k.kind === 'node') return this.nodes.delete(k.node);
    if (k.kind === 'subnet') return this.subnets.get(k.net)?.delete(k.node) ?? false;
    if (k.kind === 'endpoint') this.endpoints.get(k.net)?.delete(`${k.node}/${k.id}`);
    return false;
  }

  leasesOf(net: string): Map<string, SubnetLease> {
    let m = this.subnets.get(net);
    if (!m) this.subnets.set(net, (m = new Map()));
    return m;
  }

  endpointsOf(net: string): Map<string, EndpointSummary> {
    let m = this.endpoints.get(net);
    if (!m) this.endpoints.set(net, (m = new Map()));
    return m;
  }

  /** The endpoints of other nodes that have names on a network, in a stable order (what the DNS server mirrors). */
  namedRemotes(net: string, self: string): RemoteEndpoint[] {
    return [...this.endpointsOf(net)]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([, e]) => e)
      .filter((e) => e.node !== self && (e.names?.length || e.aliases?.length))
      .map((e) => ({ node: e.node, ips: e.ips, names: e.names ?? [], aliases: e.aliases ?? [] }));
  }

  /** Every underlay address of a node that holds a lease: the only sources VXLAN is accepted from. */
  members(): string[] {
    const out = new Set<string>();
    for (const n of this.nodes.values()) out.add(n.underlay);
    for (const m of this.subnets.values()) for (const l of m.values()) out.add(l.underlay);
    return [...out];
  }
}

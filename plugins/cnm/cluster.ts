// The cluster's view of the overlay (etcd): `cnm node ls|rm`, and `cnm network ls|inspect` for overlay networks.
import { parseArgs } from 'node:util';
import { EtcdClient } from '../../shared/etcd/client.ts';
import { keys, parseKey, type EndpointSummary, type NetworkSpec, type NodeRecord, type SubnetLease } from '../../shared/overlay/cluster.ts';
import { DEFAULT_DATA_DIR, readJson } from '../../shared/cnm/store.ts';
import { liveAgent, paths, type AgentState } from '../../shared/overlay/local.ts';
import type { EtcdConf } from '../../shared/overlay/options.ts';
import { ETCD_FLAGS, etcdFromFlags } from './agent.ts';
import { table } from './table.ts';
import { out, UsageError } from './views.ts';

/** Everything under the prefix, sorted into records. */
export interface ClusterView {
  networks: NetworkSpec[];
  nodes: Array<NodeRecord & { lease: string }>;
  subnets: Array<SubnetLease & { network: string }>;
  endpoints: Array<EndpointSummary & { network: string }>;
}

export async function readCluster(etcd: EtcdConf): Promise<ClusterView> {
  const client = new EtcdClient({ endpoints: etcd.endpoints, tls: etcd });
  const r = await client.range(keys.all(etcd.prefix), { prefix: true });
  const view: ClusterView = { networks: [], nodes: [], subnets: [], endpoints: [] };
  for (const kv of r.kvs) {
    const k = parseKey(etcd.prefix, kv.key);
    if (!k || k.kind === 'claim') continue;
    const v = JSON.parse(kv.value) as never;
    if (k.kind === 'network') view.networks.push(v);
    else if (k.kind === 'node') view.nodes.push({ ...(v as NodeRecord), lease: kv.lease });
    else if (k.kind === 'subnet') view.subnets.push({ ...(v as SubnetLease), network: k.net });
    else if (k.kind === 'endpoint') view.endpoints.push({ ...(v as EndpointSummary), network: k.net });
  }
  return view;
}

/** The store's flags, else those of the node's running (or last) agent. */
function etcdConf(values: Record<string, string | boolean | undefined>, dataDir: string): EtcdConf {
  if (values['etcd-endpoints']) return etcdFromFlags(values);
  const agent = liveAgent(dataDir) ?? readJson<AgentState>(paths.agent(dataDir));
  if (!agent) throw new UsageError(`no cnm agent state in ${dataDir}: pass --etcd-endpoints (and --etcd-prefix)`);
  return { endpoints: agent.etcdEndpoints, prefix: agent.prefix };
}

export async function clusterCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...ETCD_FLAGS, 'data-dir': { type: 'string' }, json: { type: 'boolean', default: false } } });
  const [group, verb, arg] = positionals;
  const etcd = etcdConf(values, values['data-dir'] ?? DEFAULT_DATA_DIR);
  const client = new EtcdClient({ endpoints: etcd.endpoints, tls: etcd });
  const view = await readCluster(etcd);
  const json = values.json ?? false;
  switch (`${group} ${verb ?? ''}`.trim()) {
    case 'node ls': {
      const rows = view.nodes.sort((a, b) => a.name.localeCompare(b.name)).map((n) => {
        const held = view.subnets.filter((s) => s.node === n.name);
        return { name: n.name, underlay: n.underlay, subnets: held.map((s) => s.subnet), vteps: held.map((s) => s.vtepMac), endpoints: view.endpoints.filter((e) => e.node === n.name).length };
      });
      if (json) out(JSON.stringify(rows, null, 2) + '\n');
      else out(table(['NAME', 'UNDERLAY', 'SUBNETS', 'VTEP MACS', 'ENDPOINTS'], rows.map((r) => [r.name, r.underlay, r.subnets.join(',') || '-', r.vteps.join(',') || '-', String(r.endpoints)])));
      return 0;
    }
    case 'node rm': {
      if (!arg) throw new UsageError('node rm needs a node name');
      const node = view.nodes.find((n) => n.name === arg);
      if (!node) {
        // Every key of a node goes with its lease: without a node record there is nothing left of it.
        process.stderr.write(`cnm: no node named ${JSON.stringify(arg)} holds a lease under ${etcd.prefix}: nothing to remove\n`);
        return 0;
      }
      // Every key of a node is bound to its lease: revoking it removes the node from every peer at once.
      await client.leaseRevoke(node.lease);
      out(`${arg}\n`);
      return 0;
    }
    case 'network ls': {
      const rows = view.networks.map((n) => ({ name: n.name, driver: 'overlay', scope: 'global', network: n.network, vni: n.vni, nodes: view.subnets.filter((s) => s.network === n.name).length, endpoints: view.endpoints.filter((e) => e.network === n.name).length }));
      if (json) out(JSON.stringify(rows, null, 2) + '\n');
      else out(table(['NAME', 'DRIVER', 'SCOPE', 'NETWORK', 'VNI', 'NODES', 'ENDPOINTS'], rows.map((r) => [r.name, r.driver, r.scope, r.network, String(r.vni), String(r.nodes), String(r.endpoints)])));
      return 0;
    }
    case 'network rm': {
      // A global network goes when no endpoint of it is left anywhere; every agent then removes its device.
      let failed = 0;
      for (const name of positionals.slice(2)) {
        const eps = view.endpoints.filter((e) => e.network === name);
        if (!view.networks.some((n) => n.name === name)) {
          process.stderr.write(`cnm: no overlay network named ${JSON.stringify(name)} under ${etcd.prefix}\n`);
          failed++;
        } else if (eps.length) {
          process.stderr.write(`cnm: overlay network ${name} still has ${eps.length} endpoints (on ${[...new Set(eps.map((e) => e.node))].join(', ')}): DEL them first\n`);
          failed++;
        } else {
          for (const key of [keys.subnets(etcd.prefix, name), keys.claim(etcd.prefix, name, ''), keys.endpoints(etcd.prefix, name)]) await client.delete(key, { prefix: true });
          await client.delete(keys.network(etcd.prefix, name));
          out(`${name}\n`);
        }
      }
      return failed ? 1 : 0;
    }
    case 'network inspect': {
      const spec = view.networks.find((n) => n.name === arg);
      if (!spec) throw new UsageError(`no overlay network named ${JSON.stringify(arg)} under ${etcd.prefix}`);
      const nodes = view.subnets
        .filter((s) => s.network === spec.name)
        .map((s) => ({ node: s.node, underlay: s.underlay, subnet: s.subnet, vtepMac: s.vtepMac, endpoints: view.endpoints.filter((e) => e.network === spec.name && e.node === s.node).map(({ containerId, ifname, ips, mac }) => ({ containerId, ifname, ips, mac })) }));
      const doc = { ...spec, driver: 'overlay', scope: 'global', nodes };
      if (json) {
        out(JSON.stringify(doc, null, 2) + '\n');
        return 0;
      }
      out(`Name:      ${spec.name}\nDriver:    overlay (global)\nNetwork:   ${spec.network}, /${spec.subnetLen} per node\nVNI:       ${spec.vni}, UDP port ${spec.port}\nOptions:   ipMasq ${spec.ipMasq}, icc ${spec.icc}, internal ${spec.internal}\n\n`);
      out(table(['NODE', 'UNDERLAY', 'SUBNET', 'VTEP MAC', 'ENDPOINTS'], nodes.map((n) => [n.node, n.underlay, n.subnet, n.vtepMac, n.endpoints.map((e) => `${e.containerId}:${e.ifname}=${e.ips.join(',')}`).join(' ') || '-'])));
      return 0;
    }
  }
  throw new UsageError(`unknown command "${group} ${verb ?? ''}"`);
}

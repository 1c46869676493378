// cnm-overlay as a CNI plugin: before the NetworkController runs, the node's leased subnet of the network becomes
// the in-process cnm-host-local section the config does not have. Only local files are read here; the first ADD
// of a network on a node that holds no subnet of it yet asks the node's agent (a request file) and waits for it.
import type { Invocation, PluginHandlers } from '../cni/skeleton.ts';
import { CniError, ErrorCode, invalidConfig } from '../cni/errors.ts';
import { NetworkController } from '../cnm/controller.ts';
import { openIpam, toModel } from '../cni/cnm-plugin.ts';
import { IN_PROCESS_IPAM } from '../cnm/ipam.ts';
import { networkPath } from '../cnm/paths.ts';
import type { NetworkRecord } from '../cnm/records.ts';
import { DEFAULT_DATA_DIR, readJson, removeFile, writeJsonAtomic } from '../cnm/store.ts';
import { sleepSync } from '../kernel/sleep.ts';
import { specDifferences, subnetAddresses } from './cluster.ts';
import { overlayDriver } from './driver.ts';
import { holdsLease, liveAgent, paths, readLocalNetwork, type AgentState, type LocalNetwork } from './local.ts';
import { parseOverlayConf, type OverlayConf } from './options.ts';

/** How long a first ADD waits for the agent to lease a subnet: a create-if-absent txn and a few kernel calls. */
const WAIT_MS = 15_000;

function noAgent(dataDir: string): CniError {
  return new CniError(ErrorCode.TryAgainLater, `no cnm agent is running on this node (data dir ${dataDir})`, 'start `cnm agent --etcd-endpoints URL --node-name NAME` (the DaemonSet in deploy/ runs it)');
}

function sameCluster(agent: AgentState, c: OverlayConf, net: string): void {
  if (agent.prefix !== c.etcd.prefix || !c.etcd.endpoints.some((e) => agent.etcdEndpoints.includes(e))) {
    throw invalidConfig(
      `network ${net} lives in etcd ${c.etcd.endpoints.join(',')} under ${c.etcd.prefix}, but this node's agent serves ${agent.etcdEndpoints.join(',')} under ${agent.prefix}`,
      'give the config the etcdEndpoints and etcdPrefix the agent runs with',
    );
  }
}

/** Asks the agent for the network and waits until it holds a subnet of it (or says why not). */
function requestNetwork(dataDir: string, c: OverlayConf): LocalNetwork {
  const net = c.spec.name;
  const agent = liveAgent(dataDir);
  if (!agent) throw noAgent(dataDir);
  sameCluster(agent, c, net);
  removeFile(paths.rejected(dataDir, net));
  writeJsonAtomic(paths.request(dataDir, net), c.spec);
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const local = readLocalNetwork(dataDir, net);
    if (local) return local;
    const rejected = readJson<{ message: string }>(paths.rejected(dataDir, net));
    if (rejected) throw invalidConfig(rejected.message, 'a network keeps the settings it was created with across the cluster; change the config or use another name');
    if (!liveAgent(dataDir)) throw noAgent(dataDir);
    if (Date.now() > deadline) {
      const why = agent.etcdUp ? 'it has not answered' : 'it cannot reach etcd';
      throw new CniError(ErrorCode.TryAgainLater, `the cnm agent of node ${agent.node} holds no subnet of network ${net} yet: ${why}`, 'try again; the agent logs say more');
    }
    sleepSync(20);
  }
}

/**
 * The network as this node holds it, asking the agent first when it holds none yet; refused when the cluster
 * has the network with other settings. Both front doors (cnm-overlay's ADD, `cnm plugin serve`) come here.
 */
export function leasedNetwork(dataDir: string, c: OverlayConf): LocalNetwork {
  const local = readLocalNetwork(dataDir, c.spec.name) ?? requestNetwork(dataDir, c);
  const diff = specDifferences(local.spec, c.spec);
  if (diff.length) throw invalidConfig(`network ${c.spec.name} exists in the cluster with other settings: this config has ${diff.join(', ')}`, 'a network keeps the settings it was created with; change the config or use another name');
  return local;
}

/** The subnet this node serves the network from: the leased one, or the one the store recorded, for DEL and GC. */
function subnetFor(inv: Invocation, dataDir: string, c: OverlayConf, mode: 'add' | 'other'): string {
  if (mode === 'add') return leasedNetwork(dataDir, c).subnet;
  const local = readLocalNetwork(dataDir, c.spec.name);
  if (local) return local.subnet;
  const rec = readJson<NetworkRecord>(networkPath(dataDir, inv.conf.name));
  return rec?.subnets[0]?.subnet ?? c.spec.network;
}

/** The NetworkController of an overlay invocation: the model's request, and cnm-host-local over the node's subnet. */
function controller(inv: Invocation, mode: 'add' | 'other'): NetworkController {
  const leased = withLeasedSubnet(inv, mode);
  const req = toModel(leased);
  return new NetworkController(overlayDriver, req, openIpam(leased, req.network.dataDir), inv.log);
}

function withLeasedSubnet(inv: Invocation, mode: 'add' | 'other'): Invocation {
  const c = parseOverlayConf(inv.conf.name, inv.conf.raw);
  const dataDir = inv.conf.dataDir ?? DEFAULT_DATA_DIR;
  const subnet = subnetFor(inv, dataDir, c, mode);
  const { gateway } = subnetAddresses(subnet);
  return { ...inv, conf: { ...inv.conf, ipam: { type: IN_PROCESS_IPAM, ranges: [[{ subnet, gateway }]] } } };
}

/**
 * STATUS from the local state: 50 when no agent runs (an ADD of a new network cannot be served, peers are not
 * kept), 51 when the node has lost its lease (every peer has dropped this node: its pods are cut off too).
 */
function status(inv: Invocation): void {
  const c = parseOverlayConf(inv.conf.name, inv.conf.raw);
  const dataDir = inv.conf.dataDir ?? DEFAULT_DATA_DIR;
  const agent = liveAgent(dataDir);
  if (!agent) throw new CniError(ErrorCode.NotAvailable, `no cnm agent is running on this node (data dir ${dataDir})`, 'start `cnm agent --etcd-endpoints URL --node-name NAME`');
  sameCluster(agent, c, inv.conf.name);
  if (!holdsLease(agent)) {
    throw new CniError(ErrorCode.NotAvailableLimited, `node ${agent.node} holds no etcd lease: peers have dropped it`, agent.etcdUp ? 'the agent is taking a new one' : `etcd (${agent.etcdEndpoints.join(',')}) is unreachable from this node`);
  }
  controller(inv, 'other').status();
}

export const overlayPlugin: PluginHandlers = {
  add: (inv) => controller(inv, 'add').add(),
  del: (inv) => controller(inv, 'other').del(),
  check: (inv) => controller(inv, 'other').check(),
  gc: (inv) => controller(inv, 'other').gc(),
  status,
};

// The node-local state the agent keeps and the CNI hot path reads: files under DATA_DIR/overlay, no etcd.
import { pidAlive, readJson } from '../cnm/store.ts';
import type { NetworkSpec } from './cluster.ts';

/** What the running agent tells the plugins about itself. */
export interface AgentState {
  pid: number;
  node: string;
  underlay: string;
  underlayMtu: number;
  etcdEndpoints: string[];
  prefix: string;
  /** Until when (epoch ms) etcd last confirmed the node's lease; 0 without one. */
  leaseExpires: number;
  /** Whether the last call to etcd succeeded. */
  etcdUp: boolean;
  updated: string;
}

/** One overlay network as it is set up on this node: written by the agent once the VXLAN device is up. */
export interface LocalNetwork {
  spec: NetworkSpec;
  node: string;
  subnet: string;
  vxlan: string;
  vtepMac: string;
  /** The pods' MTU unless the config sets one: the underlay's minus the VXLAN overhead. */
  mtu: number;
}

/** What survives agent restarts: the VTEP MAC and the last subnet of each network. */
export interface Persisted {
  macs: Record<string, string>;
  subnets: Record<string, string>;
}

export const overlayDir = (dataDir: string) => `${dataDir}/overlay`;
export const paths = {
  agent: (d: string) => `${overlayDir(d)}/agent.json`,
  persisted: (d: string) => `${overlayDir(d)}/persisted.json`,
  requests: (d: string) => `${overlayDir(d)}/requests`,
  request: (d: string, net: string) => `${overlayDir(d)}/requests/${net}.json`,
  rejected: (d: string, net: string) => `${overlayDir(d)}/rejected/${net}.json`,
  networks: (d: string) => `${overlayDir(d)}/networks`,
  network: (d: string, net: string) => `${overlayDir(d)}/networks/${net}.json`,
};

/** Link names are the VNI's: one VXLAN device and one bridge per network per node. */
export const vxlanName = (vni: number) => `cnmox${vni}`;
export const bridgeName = (vni: number) => `cnmob${vni}`;

export const holdsLease = (a: AgentState) => a.leaseExpires > Date.now();

/** The agent's state when an agent is running on this node, else undefined. */
export function liveAgent(dataDir: string): AgentState | undefined {
  const a = readJson<AgentState>(paths.agent(dataDir));
  return a && pidAlive(a.pid) ? a : undefined;
}

export function readLocalNetwork(dataDir: string, net: string): LocalNetwork | undefined {
  return readJson<LocalNetwork>(paths.network(dataDir, net));
}

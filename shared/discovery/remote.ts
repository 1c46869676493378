// Names of a network's endpoints on other nodes, mirrored into the node's store by whoever knows them (the overlay
// agent, from etcd). The DNS server reads them beside the local endpoint records; being a file, the last known
// names outlive the cluster store being unreachable.
import { listDir, readJson } from '../cnm/store.ts';
import { discoveryDir } from './vip-state.ts';

/** One endpoint of another node, as the DNS server answers for it. */
export interface RemoteEndpoint {
  node: string;
  /** CIDR notation, as endpoint records keep them. */
  ips: string[];
  names: string[];
  aliases: string[];
}

const SUFFIX = '.remote.json';
export const remotePath = (dataDir: string, network: string) => `${discoveryDir(dataDir)}/${network}${SUFFIX}`;

/** Network name to its endpoints on other nodes, for every network of the store that has some. */
export function remoteEndpoints(dataDir: string): Map<string, RemoteEndpoint[]> {
  const out = new Map<string, RemoteEndpoint[]>();
  for (const name of listDir(discoveryDir(dataDir))) {
    if (!name.endsWith(SUFFIX)) continue;
    const eps = readJson<RemoteEndpoint[]>(`${discoveryDir(dataDir)}/${name}`);
    if (Array.isArray(eps)) out.set(name.slice(0, -SUFFIX.length), eps);
  }
  return out;
}

import { endpointDir, networkPath } from './paths.ts';
import type { EndpointRecord, NetworkRecord } from './records.ts';
import { listDir, readJson } from './store.ts';

/** Read-only views of a store, for the operator CLI. */
export function listNetworks(dataDir: string): NetworkRecord[] {
  return listDir(`${dataDir}/networks`)
    .filter((n) => n.endsWith('.json'))
    .map((n) => readJson<NetworkRecord>(`${dataDir}/networks/${n}`))
    .filter((n): n is NetworkRecord => n !== undefined)
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function readNetwork(dataDir: string, name: string): NetworkRecord | undefined {
  return readJson<NetworkRecord>(networkPath(dataDir, name));
}

export function listEndpoints(dataDir: string, network?: string): EndpointRecord[] {
  const networks = network ? [network] : listDir(`${dataDir}/endpoints`);
  return networks.flatMap((net) => {
    const dir = endpointDir(dataDir, net);
    return listDir(dir)
      .filter((n) => n.endsWith('.json'))
      .map((n) => readJson<EndpointRecord>(`${dir}/${n}`))
      .filter((e): e is EndpointRecord => e !== undefined);
  }).sort((a, b) => a.network.localeCompare(b.network) || a.containerId.localeCompare(b.containerId) || a.ifname.localeCompare(b.ifname));
}
